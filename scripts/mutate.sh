#!/usr/bin/env sh
# Mutation testing of the modules where a silent bug costs most (docs/testing.md).
#
#   ./scripts/mutate.sh secrets          one module (see the table below)
#   ./scripts/mutate.sh all              every module, one after the other
#   ./scripts/mutate.sh --list           the modules, their files and their tests
#
# Each module is mutated alone, against only the fast tests that concern it (unit, property and
# repository tests; no e2e suite), so a module takes minutes, not hours. mutmut 3 works in a
# copy of the code under mutants/ (git-ignored), made afresh for every module. At the end the
# score of each module is printed (killed/total) with the names of the mutants that survived;
# `.venv/bin/mutmut show <name>` prints one's diff (until the next run replaces mutants/).
# MUTATE_CHILDREN (default 2) is how many mutants run at once; keep it at the machine's cores.
set -eu
cd "$(dirname "$0")/.."

# module | files to mutate | pytest arguments selecting the tests that judge them (plus
# tests/*/test_mutants_<module>.py) | optionally, for a file that is mostly Telegram plumbing,
# the functions whose mutants count (file:name,Class.name ...). The storage modules mutate the
# SQLite repositories, so their tests run on SQLite only (the PostgreSQL runs of the same tests
# exercise storage/postgres/).
MODULES='
secrets|tgbot/sensitive.py|tests/unit/test_sensitive_properties.py tests/unit/test_text.py
links|tgbot/links.py|tests/unit/test_links_properties.py
lanes|tgbot/lanes.py|tests/unit/test_lanes.py
txquery|tgbot/txquery.py|tests/unit/test_txquery.py
inbox|storage/repos/inbox.py|tests/storage/test_repositories.py tests/storage/test_privacy_repository.py -k "not postgresql"
outbox|storage/repos/outbox.py|tests/storage/test_repositories.py tests/storage/test_privacy_repository.py tests/storage/test_db.py -k "not postgresql"
verify|storage/repos/verifications.py|-k "not postgresql"
refunds|storage/repos/refunds.py handlers/refund.py|tests/storage/test_repositories.py -k "not postgresql"|handlers/refund.py:acceptable_amount,_example
tickets|storage/repos/tickets.py services/desk/groups.py|tests/storage/test_repositories.py -k "not postgresql"|services/desk/groups.py:GroupHealth.current_id,GroupHealth.is_agent_group,GroupHealth.is_healthy,GroupHealth.next_of
'

usage() {
  echo "usage: $0 <module>|all|--list; modules:" >&2
  echo "$MODULES" | sed -n 's/^\([a-z]*\)|.*/  \1/p' >&2
  exit 2
}

[ $# -eq 1 ] || usage
[ -x .venv/bin/mutmut ] || ./scripts/venv.sh

run_module() {
  row=$(echo "$MODULES" | grep "^$1|") || usage
  files=$(echo "$row" | cut -d'|' -f2)
  tests=$(echo "$row" | cut -d'|' -f3)
  counted=$(echo "$row" | cut -d'|' -f4)
  for extra in tests/*/test_mutants_"$1".py; do
    [ -f "$extra" ] && tests="$extra $tests"
  done
  echo "== $1: mutating $files against $tests"
  rm -rf mutants
  # mutmut reads its configuration from pyproject.toml only; the driver replaces the two lists
  # that differ per module before mutmut starts (its workers are forked from this process).
  MUTATE_FILES="$files" MUTATE_TESTS="$tests" .venv/bin/python - "${MUTATE_CHILDREN:-2}" <<'EOF'
import os
import shlex
import sys

from mutmut import configuration

cfg = configuration.config()
cfg.only_mutate = os.environ["MUTATE_FILES"].split()
cfg.pytest_add_cli_args_test_selection = shlex.split(os.environ["MUTATE_TESTS"])

from mutmut.__main__ import cli  # noqa: E402  (after the configuration is replaced)

sys.argv = ["mutmut", "run", "--max-children", sys.argv[1]]
try:
    cli()
except SystemExit as exit_:
    if exit_.code:
        raise
EOF
  MUTATE_FILES="$files" MUTATE_COUNTED="$counted" .venv/bin/python - "$1" <<'EOF'
import json
import os
import sys

from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code


def function_of(mutant: str) -> str:
    """Return "name" or "Class.name" of a mutant ("pkg.mod.xǁClassǁname__mutmut_3")."""
    name = mutant.rsplit(".", 1)[-1].rsplit("__mutmut_", 1)[0][1:]
    return name[1:].replace("ǁ", ".") if name.startswith("ǁ") else name[1:]


counted = dict(item.split(":", 1) for item in os.environ["MUTATE_COUNTED"].split())
for path in os.environ["MUTATE_FILES"].split():
    with open(f"mutants/{path}.meta") as f:
        codes = json.load(f)["exit_code_by_key"]
    if path in counted:
        names = set(counted[path].split(","))
        left_out = len(codes)
        codes = {m: code for m, code in codes.items() if function_of(m) in names}
        print(f"  {path}: counting only {', '.join(sorted(names))}"
              f" ({left_out - len(codes)} mutants of its other functions left out)")
    status = {name: status_by_exit_code[code] for name, code in codes.items()}
    killed = sum(s in ("killed", "timeout") for s in status.values())
    timeouts = sum(s == "timeout" for s in status.values())
    print(f"SCORE {sys.argv[1]} {path}: {killed}/{len(status)} killed"
          f" ({100 * killed / max(len(status), 1):.1f}%; {timeouts} of them by timeout)")
    for name, s in sorted(status.items()):
        if s not in ("killed", "timeout"):
            print(f"  {s}: {name}")
            diff = get_diff_for_mutant(name, path=path).splitlines()[2:]
            print("\n".join(f"      {line}" for line in diff if line[:1] in "-+"))
EOF
}

case "$1" in
  --list) echo "$MODULES" | sed '/^$/d' ;;
  all) for module in $(echo "$MODULES" | sed -n 's/^\([a-z]*\)|.*/\1/p'); do run_module "$module"; done ;;
  *) run_module "$1" ;;
esac
