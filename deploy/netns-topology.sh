#!/bin/sh
# A multi-host Crucible farm on one machine: network namespaces joined by veth
# pairs and a bridge, with iproute2 only. Nothing is created in the caller's
# network namespace: the bridge lives in a namespace of its own.
#
#   PREFIX-coord           the coordinator's host   SUBNET.1
#   PREFIX-r1 .. PREFIX-rN runner hosts             SUBNET.11 .. SUBNET.(10+N)
#   PREFIX-br              the bridge br0, one port per host, named after it
#                          (coord, r1, r2, ...); each host sees its end as eth0
#
# Run `netns-topology.sh --help` for the commands. Needs root (CAP_SYS_ADMIN
# and CAP_NET_ADMIN).
set -u

PROG=$(basename "$0")
SUBNET=10.77.0
EXIT_NO_NETNS=3 # `ip netns add` itself failed: no privilege for namespaces here

usage() {
  cat <<EOF
Usage: $PROG [--subnet A.B.C] COMMAND PREFIX [ARG]

Commands:
  up PREFIX N         create namespaces PREFIX-coord, PREFIX-r1..PREFIX-rN and
                      PREFIX-br (the bridge), link each host to the bridge with
                      a veth pair, address them in A.B.C.0/24 and print one line
                      "NAMESPACE ADDRESS" per host. Fails, creating nothing, when
                      a namespace named PREFIX-... exists. N: 1 to 200.
  down PREFIX         delete every namespace of the topology (and so its links);
                      succeeds when there is nothing to delete.
  cut PREFIX HOST     take HOST's port on the bridge down (HOST: coord, r1, ...):
                      its packets are dropped, as with a pulled cable.
  restore PREFIX HOST bring HOST's bridge port up again.
  addr PREFIX HOST    print HOST's address.

Options:
  --subnet A.B.C      first three octets of the /24 to use (default 10.77.0).
  -h, --help          this text.

The coordinator's host is SUBNET.1, runner i is SUBNET.(10+i). Run a program
on a host with  ip netns exec PREFIX-coord COMMAND  (which remounts /sys inside;
use  nsenter --net=/run/netns/PREFIX-r1 COMMAND  for runners, whose sandbox
needs the host's cgroup mounts under /sys/fs/cgroup).

Exit status: 0 done, 1 failed, 2 bad usage, $EXIT_NO_NETNS 'ip netns add' failed (no
privilege for network namespaces here).
EOF
}

die() {
  echo "$PROG: $*" >&2
  exit 1
}

usage_error() {
  echo "$PROG: $*" >&2
  echo "Run '$PROG --help' for usage." >&2
  exit 2
}

check_prefix() {
  case "$1" in
    "" | -* | *[!A-Za-z0-9_.-]*)
      usage_error "PREFIX '$1': use letters, digits, '_', '.' and '-', not starting with '-'"
      ;;
  esac
  [ ${#1} -le 40 ] || usage_error "PREFIX '$1' is longer than 40 characters"
}

check_subnet() {
  echo "$1" | grep -Eq '^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$' ||
    usage_error "--subnet '$1': expected the first three octets, like 10.77.0"
  for octet in $(echo "$1" | tr . ' '); do
    [ "$octet" -le 255 ] || usage_error "--subnet '$1': octet $octet is over 255"
  done
}

# Namespaces of the topology PREFIX that exist now, one a line.
existing() {
  ip netns list 2>/dev/null | awk '{print $1}' |
    grep -E "^$(echo "$1" | sed 's/\./\\./g')-(coord|br|r[0-9]+)\$"
}

host_addr() { # PREFIX HOST
  case "$2" in
    coord) echo "$SUBNET.1" ;;
    r[1-9] | r[1-9][0-9] | r[1-9][0-9][0-9])
      i=${2#r}
      [ "$i" -le 200 ] || usage_error "HOST '$2': runner numbers go from 1 to 200"
      echo "$SUBNET.$((10 + i))"
      ;;
    *) usage_error "HOST '$2': expected coord or rI (r1, r2, ...)" ;;
  esac
}

check_host_exists() { # PREFIX HOST
  ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1-$2" ||
    die "no namespace $1-$2: is the topology '$1' up, and does it have host '$2'?"
}

cmd_down() { # PREFIX
  status=0
  for ns in $(existing "$1"); do
    ip netns delete "$ns" || status=1
  done
  [ $status -eq 0 ] || die "could not delete every namespace of '$1'"
}

# Runs "$@", and on failure tears down what `up` made so far and exits.
step() {
  if ! "$@"; then
    echo "$PROG: failed: $*" >&2
    cmd_down "$UP_PREFIX" 2>/dev/null
    exit 1
  fi
}

add_host() { # PREFIX HOST
  ns="$1-$2"
  step ip netns add "$ns"
  step ip -n "$ns" link set lo up
  # eth0 in the host, its peer on the bridge named after the host.
  step ip -n "$ns" link add eth0 type veth peer name "$2" netns "$1-br"
  step ip -n "$ns" addr add "$(host_addr "$1" "$2")/24" dev eth0
  step ip -n "$ns" link set eth0 up
  step ip -n "$1-br" link set "$2" master br0
  step ip -n "$1-br" link set "$2" up
  echo "$ns $(host_addr "$1" "$2")"
}

cmd_up() { # PREFIX N
  case "$2" in
    "" | *[!0-9]*) usage_error "N '$2': expected a number of runners from 1 to 200" ;;
  esac
  if [ "$2" -lt 1 ] || [ "$2" -gt 200 ]; then
    usage_error "N '$2': expected 1 to 200 runners"
  fi
  found=$(existing "$1")
  [ -z "$found" ] ||
    die "namespaces of topology '$1' exist already: $(echo "$found" | paste -sd ' ' -); run '$PROG down $1' first"
  if ! ip netns add "$1-br"; then
    echo "$PROG: 'ip netns add $1-br' failed: network namespaces need root (CAP_SYS_ADMIN)" >&2
    exit $EXIT_NO_NETNS
  fi
  UP_PREFIX=$1
  step ip -n "$1-br" link set lo up
  step ip -n "$1-br" link add br0 type bridge
  step ip -n "$1-br" link set br0 up
  add_host "$1" coord
  i=1
  while [ $i -le "$2" ]; do
    add_host "$1" "r$i"
    i=$((i + 1))
  done
}

cmd_link() { # PREFIX HOST up|down
  host_addr "$1" "$2" >/dev/null
  check_host_exists "$1" "$2"
  ip -n "$1-br" link set "$2" "$3" || die "could not set $2's bridge port $3"
}

while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --subnet)
      [ $# -ge 2 ] || usage_error "--subnet needs a value, like 10.77.0"
      SUBNET=$2
      shift 2
      ;;
    --subnet=*)
      SUBNET=${1#--subnet=}
      shift
      ;;
    -*) usage_error "unknown option '$1'" ;;
    *) break ;;
  esac
done
check_subnet "$SUBNET"

[ $# -ge 2 ] || usage_error "expected COMMAND PREFIX"
command=$1
prefix=$2
check_prefix "$prefix"
shift 2

case "$command" in
  up)
    [ $# -eq 1 ] || usage_error "up takes PREFIX N"
    cmd_up "$prefix" "$1"
    ;;
  down)
    [ $# -eq 0 ] || usage_error "down takes PREFIX only"
    cmd_down "$prefix"
    ;;
  cut | restore)
    [ $# -eq 1 ] || usage_error "$command takes PREFIX HOST"
    if [ "$command" = cut ]; then state=down; else state=up; fi
    cmd_link "$prefix" "$1" "$state"
    ;;
  addr)
    [ $# -eq 1 ] || usage_error "addr takes PREFIX HOST"
    host_addr "$prefix" "$1"
    ;;
  *) usage_error "unknown command '$command'" ;;
esac
