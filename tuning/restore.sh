#!/usr/bin/env bash
# tuning/restore.sh [--state DIR] [--dry-run]
#
# Undoes tuning/apply.sh --apply: writes back every value it saved in <state>/saved.tsv (last
# change first), removes the files and directories it created, puts back the files it
# replaced, then removes the state itself. Values apply did not change are not touched.
# When a step fails the state is kept (so it can be run again) and the exit status is 1.
# --dry-run prints what it would do and writes nothing.
# --state DIR  where apply.sh saved the values (default $VELOZ_STATE_DIR or
#              <root>/var/lib/veloz-tuning)
#
# Environment (for tests; see tuning/lib.sh): VELOZ_SYSROOT (root prefix for /sys, /proc and
# /etc, default the real host), VELOZ_STATE_DIR, VELOZ_EUID.
set -euo pipefail

PROG=restore.sh
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

dry=0 STATE_DIR_ARG=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --state) STATE_DIR_ARG=${2:?--state needs a directory}; shift 2 ;;
    --state=*) STATE_DIR_ARG=${1#*=}; shift ;;
    --dry-run) dry=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

STATE_DIR=$(state_dir)
STATE=$STATE_DIR/saved.tsv
if [ ! -f "$STATE" ]; then
  echo "nothing to restore: no $STATE (tuning/apply.sh --apply was not run, or it was restored already)"
  exit 0
fi
if [ "$dry" = 0 ] && ! fake_root && [ "$(effective_uid)" != 0 ]; then
  die "restoring kernel settings needs root: sudo $0"
fi

kinds=() paths=() values=()
while IFS=$'\t' read -r kind path value || [ -n "$kind" ]; do
  case "$kind" in
    "" | "#"*) continue ;;
    value | created | replaced | sysmkdir | mkdir) ;;
    *) die "$STATE: unknown entry '$kind'" ;;
  esac
  kinds+=("$kind")
  paths+=("$path")
  values+=("${value:-}")
done <"$STATE"

failures=0
fail() {
  echo "FAILED: $*" >&2
  failures=$((failures + 1))
}
do_or_say() { # VERB WHAT COMMAND...: run it and say "<verb>d WHAT" ("would <verb> WHAT" in a dry run)
  local verb=$1 what=$2
  shift 2
  if [ "$dry" = 1 ]; then
    echo "would $verb $what"
  elif "$@"; then
    echo "${verb}d $what"
  else
    fail "$verb $what"
  fi
}
restore_value() { # HOSTPATH OLD
  local err
  err=$(write_value "$1" "$2") || {
    echo "$err" >&2
    return 1
  }
}

copy_back() { # BACKUP FILE: cat into the file keeps its owner and mode
  cat -- "$1" >"$2"
}

# system entries, last change first
for ((i = ${#kinds[@]} - 1; i >= 0; i--)); do
  path=${paths[i]}
  case "${kinds[i]}" in
    value)
      cur=$(read_line "$path" || echo "?")
      cur=$(selected_choice "$cur")
      do_or_say restore "$path $cur -> ${values[i]}" restore_value "$path" "${values[i]}"
      ;;
    created)
      if [ -e "$(p "$path")" ]; then
        do_or_say remove "$path" rm -f -- "$(p "$path")"
      fi
      ;;
    replaced)
      do_or_say restore "$path from ${values[i]}" copy_back "${values[i]}" "$(p "$path")"
      ;;
    sysmkdir)
      if [ -d "$(p "$path")" ]; then
        do_or_say remove "directory $path" rmdir -- "$(p "$path")"
      fi
      ;;
  esac
done

if [ "$dry" = 1 ]; then
  echo "would remove $STATE_DIR"
  exit 0
fi
if [ "$failures" -gt 0 ]; then
  echo "$PROG: $failures step(s) failed; $STATE is kept, fix the cause and run it again" >&2
  exit 1
fi

# the state itself: backups, the file, then the directories made to hold it
for ((i = 0; i < ${#kinds[@]}; i++)); do
  [ "${kinds[i]}" != replaced ] || rm -f -- "${values[i]}"
done
[ ! -d "$STATE_DIR/backup" ] || rmdir -- "$STATE_DIR/backup"
rm -f -- "$STATE"
for ((i = ${#kinds[@]} - 1; i >= 0; i--)); do
  if [ "${kinds[i]}" = mkdir ] && [ -d "${paths[i]}" ]; then
    rmdir -- "${paths[i]}" 2>/dev/null || echo "kept ${paths[i]}: not empty"
  fi
done
echo "restored everything; removed the saved state $STATE"
