# Step runner shared by scripts/gpu-check.sh and scripts/trt-check.sh (sourced, not run).
#
# A step is a bash function step_<name> run in its own bash under `timeout`, its whole output in
# $OUT/logs/<name>.log (never filtered: the verdict comes from the exit code, not from grep).
# Exit codes: 0 PASS, 77 SKIP (the step says why on its last output line), anything else FAIL;
# 124/137 (timeout's) FAIL as "timed out". One line per step on the terminal, a total time
# budget that caps every step's timeout (a step with under 10 s left is skipped), and after
# every step $OUT/$RESULTS_NAME is rewritten, so a run killed from outside still leaves its
# results so far.
#
# The caller sets: OUT, RESULTS_NAME, MODE, BUDGET_S, DRY_RUN (0/1), and calls
#   steps_begin; run_step NAME TIMEOUT_S "what it checks"; ...; steps_end
# A TIMEOUT_S of 0 means "not in this mode" (SKIP). ONLY (optional, comma-separated step names)
# runs those steps alone, the rest SKIP: a rerun after a fix without repeating what passed.
# steps_end returns 1 if any step failed.

STEPS_TSV=""
STEPS_T0=0
STEPS_FAILED=0

steps_begin() {
  STEPS_T0=$(date +%s)
  if [ "$DRY_RUN" = 1 ]; then
    echo "dry run: $MODE mode, time budget ${BUDGET_S} s, results would go to $OUT/$RESULTS_NAME"
    return 0
  fi
  mkdir -p "$OUT/logs"
  STEPS_TSV="$OUT/logs/steps.tsv"
  : > "$STEPS_TSV"
}

# steps_json: $OUT/$RESULTS_NAME from the TSV (python3: every box here has it).
steps_json() {
  python3 - "$STEPS_TSV" "$OUT/$RESULTS_NAME" "$MODE" "$BUDGET_S" "$STEPS_T0" "$@" <<'PY'
import datetime, json, os, platform, sys, time
tsv, dest, mode, budget, t0 = sys.argv[1:6]
extra = dict(a.split("=", 1) for a in sys.argv[6:])
steps = []
with open(tsv) as f:
    for line in f:
        name, status, seconds, rc, timeout_s, reason = line.rstrip("\n").split("\t")
        steps.append({"name": name, "status": status, "seconds": int(seconds), "rc": int(rc),
                      "timeout_s": int(timeout_s), "log": f"logs/{name}.log", "reason": reason})
summary = {s: sum(1 for x in steps if x["status"] == s) for s in ("PASS", "FAIL", "SKIP")}
doc = {
    "mode": mode,
    "budget_s": int(budget),
    "started": datetime.datetime.fromtimestamp(int(t0), datetime.timezone.utc).isoformat(),
    "elapsed_s": int(time.time()) - int(t0),
    "host": platform.node(),
    "steps": steps,
    "summary": summary,
    "passed": summary["FAIL"] == 0,
    **extra,
}
tmp = dest + ".tmp"
with open(tmp, "w") as f:
    json.dump(doc, f, indent=1)
os.replace(tmp, dest)
PY
}

steps_record() {  # name status seconds rc timeout reason
  local reason=${6//$'\t'/ }
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${reason//$'\n'/ }" >> "$STEPS_TSV"
  steps_json
}

run_step() {
  local name=$1 limit=$2 what=$3
  local why="not in $MODE mode"
  if [ -n "${ONLY:-}" ] && [[ ",$ONLY," != *",$name,"* ]]; then limit=0; why="not in --only"; fi
  if [ "$DRY_RUN" = 1 ]; then
    if [ "$limit" = 0 ]; then
      printf '  %-26s  (%s)  %s\n' "$name" "$why" "$what"
    else
      printf '  %-26s  timeout %4s s  %s\n' "$name" "$limit" "$what"
    fi
    return 0
  fi
  if [ "$limit" = 0 ]; then
    printf 'SKIP  %-26s  %s\n' "$name" "$why"
    steps_record "$name" SKIP 0 0 0 "$why"
    return 0
  fi
  local left=$((BUDGET_S - ($(date +%s) - STEPS_T0)))
  if [ "$left" -lt 10 ]; then
    printf 'SKIP  %-26s  time budget of %s s spent\n' "$name" "$BUDGET_S"
    steps_record "$name" SKIP 0 0 "$limit" "time budget of $BUDGET_S s spent"
    return 0
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  local log="$OUT/logs/$name.log" start rc=0
  start=$(date +%s)
  {
    echo "# $name: $what"
    echo "# timeout ${limit} s, started $(date -u +%FT%TZ)"
  } > "$log"
  timeout --kill-after=10 "$limit" bash -c "set -euo pipefail; step_$name" >> "$log" 2>&1 || rc=$?
  local seconds=$(($(date +%s) - start)) status reason=""
  case $rc in
    0) status=PASS ;;
    77) status=SKIP; reason=$(tail -n 1 "$log") ;;
    124|137) status=FAIL; reason="timed out after ${limit} s" ;;
    *) status=FAIL; reason="exit code $rc" ;;
  esac
  printf '%-4s  %-26s  %4s s  %s\n' "$status" "$name" "$seconds" "${reason:-$what}"
  if [ "$status" = FAIL ]; then
    STEPS_FAILED=1
    echo "      last lines of $log:"
    tail -n 25 "$log" | sed 's/^/      | /'
  fi
  steps_record "$name" "$status" "$seconds" "$rc" "$limit" "$reason"
}

steps_end() {
  if [ "$DRY_RUN" = 1 ]; then
    return 0
  fi
  steps_json "$@"
  echo "results: $OUT/$RESULTS_NAME (logs in $OUT/logs)"
  return "$STEPS_FAILED"
}
