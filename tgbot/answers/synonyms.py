"""Synonyms, colloquial phrasing and common typos, mapped to shared concepts.

A concept (``@pay``, ``@refund``...) stands for a word in either language, so a Chinese
question and an English one about the same thing end up with the same tokens. Add a variant
here when a real question was missed; never add one to fit the frozen evaluation set
(``tests/unit/data/questions_eval.tsv``).
"""

from __future__ import annotations

import re

#: Traditional characters seen in questions, to Simplified (only what the index needs).
TRADITIONAL = str.maketrans(
    "帳帐戶凍結碼錢敗號無綁銀轉貨費額詐騙網驗證傳們麼還這難過開應點鎖關體裡帶來時間沒錯請",
    "账账户冻结码钱败号无绑银转货费额诈骗网验证传们么还这难过开应点锁关体里带来时间没错请",
)

#: Rewrites applied to the lower-cased text before it is cut into words: colloquial or
#: multi-word phrasing -> one canonical word (which may itself be a synonym below).
PHRASES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r)
    for p, r in [
        # not received / not arrived
        (r"(没|没有|未|还没|还没有|收不|没能|一直没)(收到|到账|到帐|到|来|进来|到位)", " 未到账 "),
        (
            r"\b(not|never|didnt|didn't|did not|hasnt|hasn't|has not|havent|haven't|have not|"
            r"wont|won't|doesnt|doesn't|does not)\s+(yet\s+|been\s+)?(receiv\w*|arriv\w*|come|"
            r"came|got|get|show(ed|n)? up|credited|reach\w*)\b",
            " notreceived ",
        ),
        (r"\bnever\s+(arrived|came|received)\b", " notreceived "),
        (r"\bnot\s+(working|work)\b", " broken "),
        (r"\b(can ?not|can't|cant|unable to)\s+(remember|recall)\b", " forgot "),
        (
            r"\b(can ?not|can'?t|unable to|couldn'?t)\s+(log ?in|sign ?in|login|signin)\b",
            " login locked ",
        ),
        (r"\bhow (long|many days|soon)\b|\bwhen will\b", " howlong "),
        (r"\bmoney back\b", " refund "),
        (r"\b(can ?not|can'?t|unable to|couldn'?t)\s+(pay|buy|check ?out)\b", " pay fail "),
        (r"\bu[- ]?pay\b|u钱包", " upay "),
        (r"\bwhere('?s| is| are)\b|(到|去)哪(儿|里)?了|在哪(里|儿)?呢?$", " whereis "),
        (r"\b(log|sign)(ged|ing)? ?(in|into)\b", " login "),
        (r"\bpass ?word\b", " password "),
        (r"\b(two|2)[- ]?(factor|step)\b|\b2fa\b", " twofactor "),
        (r"\bmicro[- ]?deposits?\b|\bsmall deposit\b", " microdeposit "),
        (r"\bphone ?number|\bmobile ?number|\bcell ?number", " phonenumber "),
        (r"\bopening hours\b|\bworking hours\b|\boffice hours\b|\bbusiness hours\b", " hours "),
        (r"\bnot me\b|\bi didn'?t make\b|\bi did not make\b|\bwasn'?t me\b", " unauthorized "),
        (r"\bby mistake\b|\bmistakenly\b", " wrong "),
        (r"\bfreezing\b|\bfreezes\b|\bfroze\b(?! my)", " hang "),
        (r"不是我(付|支付|转|买|消费|操作)的?|莫名其妙|陌生(的)?(交易|消费|付款)", " 盗刷 "),
        (r"登不上|登录不了|登不进|无法登录|进不去", " 登录 锁定 "),
        (r"忘了|忘掉|想不起来|记不住|记不得|不记得", " 忘记 "),
        (r"付不了|付不出|支付不了|付款不了|买不了", " 支付 失败 "),
        (r"不成功|没成功|没有成功|不行", " 失败 "),
        (r"绑不上|绑定不了|绑不了", " 绑定 失败 "),
        (r"打不开|开不了|用不了|没反应", " 闪退 "),
        (r"多久|几天|多长时间|多少天|什么时候", " 多久 "),
        (r"转错|打错|汇错|付错", " 错 转账 "),
        (r"解除冻结|解封", " 解冻 "),
        (r"销户|注销", " 注销 "),
        (r"找个人|找人|有人来|真人", " 人工 "),
        (r"蜜码|秘码|密玛|密吗", "密码"),
        (r"退宽|退欵|推款", "退款"),
    ]
]

#: Extra words for the Chinese segmenter (jieba), so domain terms stay whole.
_ZH_WORDS = (
    "到账 未到账 解冻 冻结 限额 手续费 服务费 提现 转账 退款 盗刷 被盗 验证码 绑定 解绑 换绑 "
    "银行卡 钓鱼 诈骗 注销 闪退 卡死 卡住 处理中 人工 官网 小额打款 手机号 余额 扣款 扣钱 额度 "
    "账单 明细 交易记录 安全锁 指纹 共享屏幕 冒充 转圈 工作时间 联系方式 收费 已退款 失败 怎么办"
)
ZH_WORDS = _ZH_WORDS.split()

#: word -> concept(s). A word may stand for several concepts (e.g. "link").
_GROUPS: dict[str, str] = {
    "@pay": "支付 付款 付钱 付 扫码 二维码 买 买东西 消费 收款 pay payment payments paying "
    "paid checkout purchase buy qr scan",
    "@fail": "失败 失败了 出错 错误 报错 被拒 拒绝 fail failed failing fails failure "
    "declined decline unsuccessful error rejected refused broken",
    "@merchant": "商家 商户 店 店铺 网购 merchant shop store seller online",
    "@balance": "余额 零钱 balance",
    "@deduct": "扣钱 扣款 扣了 被扣 扣 deducted debited taken",
    "@transfer": "转账 汇款 转钱 打钱 转 转给 transfer transfers transferred sent send "
    "sending remit",
    "@withdraw": "提现 取现 withdraw withdrawal withdrawals cashout",
    "@notreceived": "未到账 notreceived",
    "@processing": "处理中 处理 pending processing process",
    "@arrive": "到账 收到 arrive arrived arrival receive received credited",
    "@money": "钱 资金 款 money funds cash",
    "@status": "状态 进度 status progress happening 怎么样 approved 审核 通过",
    "@where": "whereis",
    "@request": "申请 request",
    "@meaning": "意思 什么意思 mean means meaning",
    "@refund": "退款 退钱 退 退回 已退款 refund refunds refunded",
    "@rule": "规则 政策 规定 条件 部分 policy rules rule partial",
    "@howlong": "多久 howlong",
    "@password": "密码 口令 支付密码 登录密码 password passwd pwd passcode pin",
    "@forgot": "忘记 forgot forget forgotten",
    "@change": "重置 找回 修改 改 重设 换 更换 变更 reset change changed update recover "
    "replace new",
    "@lock": "锁 锁定 被锁 锁住 locked lock lockout",
    "@unlock": "解锁 unlock",
    "@freeze": "冻结 被冻结 frozen freeze suspended suspend 封号",
    "@unfreeze": "解冻 unfreeze unblock restore",
    "@phonenumber": "手机号 手机号码 电话号码 号码 phonenumber number numbers",
    "@phone": "手机 phone mobile device sim 停机",
    "@bind": "绑定 绑 换绑 关联 添加 bind binding bound link linked add",
    "@unbind": "解绑 unbind unlink remove",
    "@card": "银行卡 卡 储蓄卡 信用卡 借记卡 card cards debit",
    "@bank": "银行 bank",
    "@microdeposit": "小额打款 打款 microdeposit",
    "@limit": "限额 额度 上限 limit limits cap maximum max",
    "@daily": "每天 每日 单日 一天 daily day",
    "@monthly": "每月 月 月限额 monthly month",
    "@raise": "提高 提升 调高 增加 increase raise higher",
    "@exceed": "超过 超出 超限 exceed exceeded reached over",
    "@fee": "手续费 服务费 费用 收费 扣费 费 fee fees charge charges charged cost costs commission",
    "@safe": "安全 保护 防止 安全锁 safe safety secure security protect tips",
    "@twofactor": "指纹 面容 刷脸 fingerprint biometric twofactor authentication",
    "@scam": "诈骗 骗子 骗 冒充 假冒 钓鱼 可疑 scam scams fraud phishing fake pretending "
    "impersonating suspicious",
    "@url": "链接 网址 link url",
    "@code": "验证码 短信码 动态码 校验码 code codes otp verification",
    "@sms": "短信 sms text",
    "@stolen": "被盗 盗 盗用 盗刷 偷 被偷 丢 丢了 丢失 stolen stole steal hacked hack lost "
    "unauthorized unauthorised disappeared",
    "@someone": "有人 别人 陌生人 someone somebody stranger",
    "@login": "登录 登陆 登入 login",
    "@contact": "联系 联系方式 电话 热线 contact reach call hotline email",
    "@official": "官方 官网 official website site genuine",
    "@hours": "工作时间 营业时间 上班 几点 晚上 周末 节假日 hours weekend weekends night available",
    "@app": "app 应用 软件 客户端 application 页面 screen",
    "@hang": "卡住 卡死 卡顿 闪退 崩溃 转圈 加载 白屏 黑屏 慢 hang crash crashes crashing "
    "crashed stuck loading load slow lag",
    "@wrong": "错 错了 wrong mistake",
    "@recall": "追回 撤回 撤销 取消 recall cancel reverse",
    "@close": "注销 close closing delete deactivate",
    "@transaction": "交易 交易记录 记录 账单 明细 流水 transaction transactions history "
    "statement records",
    "@lookup": "查 查询 查看 看看 find show look",
    "@human": "人工 speak talk chat person human",
    "@account": "账户 账号 户 钱包 account wallet",
}

#: Weight of a concept in a question: broad ones count less than topic words (1.0).
WEIGHTS: dict[str, float] = {
    "@money": 0.5,
    "@pay": 0.7,
    "@account": 0.4,
    "@transfer": 0.8,
    "@change": 0.6,
    "@someone": 0.5,
    "@app": 0.8,
    "@phone": 0.7,
    "@lookup": 0.6,
    "@request": 0.6,
    "@unfreeze": 1.5,
    "@stolen": 1.3,
    "@hang": 1.3,
}
#: Weight of a word that is no concept (it still matches the same word in a phrase).
PLAIN_WEIGHT = 0.5

#: word -> concepts
SYNONYMS: dict[str, tuple[str, ...]] = {}
for _concept, _words in _GROUPS.items():
    for _word in _words.split():
        SYNONYMS[_word] = (*SYNONYMS.get(_word, ()), _concept)

#: Words that carry no topic on their own (questions, pronouns, fillers), both languages.
_STOP = (
    "a an the to of in on at for from by with and or but is are was were be been am do does "
    "did i me my mine you your we our us it its this that these those what whats which who "
    "whom how why where when can could would should will shall may might must please pls plz "
    "help hi hello hey thanks thank ok okay yes no not so just still yet again there here "
    "about any some all more very much many have has had get got getting need want wanna like "
    "know tell give let make made keep keeps kept say says said u ur im ive dont doesnt didnt "
    "cant wont isnt thats theres upay last first next today yesterday week "
    "的 了 吗 呢 吧 啊 呀 我 你 您 他 她 它 我们 你们 这 那 这个 那个 个 是 在 有 就 都 也 和 与 "
    "还 又 要 想 能 可以 会 怎么 怎么办 怎样 如何 什么 啥 咋 为什么 为啥 哪 哪里 哪儿 一直 老是 "
    "总是 一下 请问 请 帮 帮我 给 把 被 让 说 显示 提示 问题 问 一 下 多少 一笔 笔 刚才 刚刚 现在 "
    "已经 还是 能不能 可不可以 是不是 到底 好 谢谢 你好 嗯 哦 么 去 用 上 中 后 时候 的话 之后 "
    "里 里面 对方 了吗 不 没 没有 过 来 次 太多 多 很 非常 我的 老 上的"
)
STOPWORDS = frozenset(_STOP.split())
