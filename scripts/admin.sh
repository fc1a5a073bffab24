#!/usr/bin/env bash
# scripts/admin.sh [--metrics HOST:PORT] [--token-file FILE] [--config FILE] [--data DIR] [--run-dir DIR] REQUEST
#
# The operator interface of a running engine (docs/operations.md, "Operator controls"):
#   halt SYMBOL          halt an instrument (id or symbol): new orders and replaces are
#                        rejected `instrument_halted`, cancels still work
#   resume SYMBOL        resume it
#   disable ACCOUNT      kill switch: cancel the account's resting orders on every shard and
#                        refuse its new orders and replaces (`account_disabled`)
#   enable ACCOUNT       lift the kill switch
#   sessions             list the sessions (id, shard, account, peer, state, age)
#   disconnect SESSION   log one session out (reason operator_disconnect)
# With money on ([[assets]], docs/operations.md, "Money"); AMOUNT is an integer count of the
# asset's smallest units, ASSET its name or id; balances are kept per shard, so with more
# than one shard a deposit or withdrawal names its shard (shard=N, or symbol=S: the shard
# that trades S):
#   deposit ACCOUNT ASSET AMOUNT [shard=N|symbol=S]   credit the account on that shard
#   withdraw ACCOUNT ASSET AMOUNT [shard=N|symbol=S]  debit it (refused, exit 1, when less
#                        is available there)
#   balances ACCOUNT     the account's balances on every shard and the total per asset
# Halt, resume, disable, enable, deposit and withdraw are journaled: replay reproduces them,
# a restart keeps them. The answer (JSON) is printed on stdout.
#
# The operator token is read from --token-file, else from $VELOZ_ADMIN_TOKEN; it is never
# taken from the command line (other users see it in ps) and never printed. The engine holds
# its SHA-256 in `[admin] token_sha256`.
# The metrics address (the admin interface lives on it) is --metrics, else $VELOZ_METRICS,
# else the `veloz: metrics on HOST:PORT` line of the log of the engine scripts/start.sh
# started (same --config/--data/--run-dir as for it).
# Exit status: 0 done, 1 the engine refused or failed (its answer on stderr), 2 bad arguments
# or no engine to ask.
set -euo pipefail

PROG=admin.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
  echo "$PROG: $*" >&2
  exit 2
}

where=() metrics=${VELOZ_METRICS:-} token_file=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --config | --data | --run-dir)
      [ "$#" -ge 2 ] || die "$1 needs a value"
      where+=("$1" "$2")
      shift 2
      ;;
    --config=* | --data=* | --run-dir=*) where+=("$1"); shift ;;
    --metrics) metrics=${2:?--metrics needs HOST:PORT}; shift 2 ;;
    --metrics=*) metrics=${1#*=}; shift ;;
    --token-file) token_file=${2:?--token-file needs a file}; shift 2 ;;
    --token-file=*) token_file=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) break ;;
  esac
done

[ "$#" -ge 1 ] || die "which request? (see --help)"
request=$1
shift
arg=${1:-}
need_arg() { [ -n "$arg" ] || die "$request needs $1"; }
case "$request" in
  halt | resume) need_arg "an instrument id or symbol"; method=POST path="/admin/$request?symbol=$arg" ;;
  disable | enable) need_arg "an account id"; method=POST path="/admin/$request?account=$arg" ;;
  disconnect) need_arg "a session id"; method=POST path="/admin/disconnect?session=$arg" ;;
  sessions) method=GET path=/admin/sessions ;;
  balances) need_arg "an account id"; method=GET path="/admin/balances?account=$arg" ;;
  deposit | withdraw)
    if [ "$#" -lt 3 ] || [ "$#" -gt 4 ]; then
      die "$request needs ACCOUNT ASSET AMOUNT [shard=N|symbol=S]"
    fi
    for v in "$2" "$3"; do
      case "$v" in
        "" | *[!A-Za-z0-9._/-]*) die "'$v' is not an asset name, id or amount" ;;
      esac
    done
    path="/admin/$request?account=$arg&asset=$2&amount=$3"
    if [ "$#" -eq 4 ]; then
      case "$4" in
        shard=* | symbol=*) ;;
        *) die "'$4' names no shard: shard=N or symbol=S" ;;
      esac
      case "${4#*=}" in
        "" | *[!A-Za-z0-9._/-]*) die "'$4' names no shard: shard=N or symbol=S" ;;
      esac
      path="$path&$4"
    fi
    method=POST
    ;;
  *) die "unknown request '$request' (halt, resume, disable, enable, sessions, disconnect, deposit, withdraw, balances)" ;;
esac
case "$arg" in
  *[!A-Za-z0-9._-]*) die "'$arg' is not an id or symbol" ;;
esac

if [ -n "$token_file" ]; then
  [ -r "$token_file" ] || die "cannot read the token file $token_file"
  token=$(head -n 1 "$token_file")
else
  token=${VELOZ_ADMIN_TOKEN:-}
fi
[ -n "$token" ] || die "no operator token: --token-file FILE or VELOZ_ADMIN_TOKEN"

if [ -z "$metrics" ]; then
  paths=$("$HERE/start.sh" --print-paths "${where[@]}") || exit 2
  log_file=$(sed -n 's/^log_file=//p' <<<"$paths")
  [ -r "$log_file" ] && metrics=$(sed -n 's/^veloz: metrics on //p' "$log_file" | head -n 1)
  [ -n "$metrics" ] || die "no metrics address: --metrics HOST:PORT (none in ${log_file:-the log})"
fi
host=${metrics%:*} port=${metrics##*:}
host=${host#[}
host=${host%]}
case "$host" in
  0.0.0.0 | "") host=127.0.0.1 ;;
  :: | "::0") host=::1 ;;
esac

# The token travels in the request only (bash /dev/tcp: no process sees it in its arguments).
# shellcheck disable=SC2016 # $1..$5 are the inner bash's arguments
answer=$(timeout 10 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
  printf "%s %s HTTP/1.0\r\nHost: veloz\r\nAuthorization: Bearer %s\r\n\r\n" "$3" "$4" "$5" >&3
  cat <&3' _ "$host" "$port" "$method" "$path" "$token") || {
  echo "$PROG: no answer from $host:$port (is the engine running? --metrics HOST:PORT)" >&2
  exit 2
}
answer=${answer//$'\r'/}
status=$(head -n 1 <<<"$answer")
body=${answer#*$'\n\n'}
case "$status" in
  "HTTP/1.0 200"*) printf '%s\n' "$body" ;;
  *)
    echo "$PROG: $request refused: ${status#HTTP/1.0 }: $body" >&2
    exit 1
    ;;
esac
