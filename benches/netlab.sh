# shellcheck shell=bash
# A lab of hosts on one machine, sourced by benches/scaling.sh (and tests/hosts.rs through it):
# each host a network namespace with one veth link to a bridge, every link capped with `tc tbf`
# in both directions, and a storage host that serves the shared folder over its own capped link
# (sshd's SFTP, mounted with sshfs by every other host: a network file system as NFS is, since
# this kernel has no NFS; it carries the shared shuffle's traffic across that link for real).
#
#   lab_up TAG N RATE STORE    hosts TAG-m (master), TAG-w1..wN, TAG-s (storage, serving STORE)
#   lab_objects RATE [SERVER]  host TAG-o serving S3 on port 9000, its link at RATE ("none":
#                              uncapped, an object store whose bandwidth grows with its
#                              clients); SERVER moto (default: Python, one process, objects in
#                              memory, any keys) or s3s-fs (Rust, objects on this machine's
#                              disk, keys lab / lab-secret; `cargo install s3s-fs@0.14.1
#                              --features binary`, or its path in S3S_FS)
#   lab_run HOST CMD...        CMD in HOST's namespace, with the share mounted at $LAB_MNT;
#                              its process id (CMD's own, after the mount) in $LAB_DIR/pid-HOST
#   lab_bytes                  "link sent_bytes received_bytes" of every host's link, since up
#   lab_reset_counters         the byte counters of every link back to 0
#   lab_down                   everything removed (also on a second call)
#
# Needs root, iproute2's ip and tc, sshd and sshfs (apt-get install openssh-server sshfs).
# Addresses: 10.$LAB_NET.0.1 the master, .10+k worker k, .249 objects, .250 storage, .254 this
# namespace.

LAB_MNT=${LAB_MNT:-/mnt/gridmr-lab}

lab_ip() { ip "$@" >/dev/null; }

# lab_link NS DEV_IN_NS HUB_DEV ADDR [RATE]: a veth pair from the hub's bridge to NS, capped both
# ways at RATE (default $LAB_RATE).
lab_link() {
  local ns=$1 inner=$2 outer=$3 addr=$4 rate=${5:-$LAB_RATE}
  lab_ip link add "$outer" type veth peer name "${outer}i"
  lab_ip link set "${outer}i" netns "$ns"
  lab_ip -n "$ns" link set "${outer}i" name "$inner"
  lab_ip link set "$outer" netns "$LAB_HUB"
  lab_ip -n "$LAB_HUB" link set "$outer" master labbr
  lab_ip -n "$LAB_HUB" link set "$outer" up
  lab_ip -n "$ns" addr add "$addr/24" dev "$inner"
  lab_ip -n "$ns" link set "$inner" up
  lab_ip -n "$ns" link set lo up
  lab_cap "$ns" "$inner" "$rate"
  lab_cap "$LAB_HUB" "$outer" "$rate"
  LAB_LINKS+=("$ns:$inner:$outer:$rate")
}

# lab_cap NS DEV [RATE]: egress of DEV in NS at RATE, default $LAB_RATE (tbf shapes egress; each
# end caps one way).
lab_cap() {
  local rate=${3:-$LAB_RATE}
  [ "$rate" = "none" ] && return 0
  ip -n "$1" link set "$2" mtu 1500
  tc -n "$1" qdisc replace dev "$2" root tbf rate "$rate" burst 256kb latency 100ms
}

lab_up() {
  LAB_TAG=$1 LAB_N=$2 LAB_RATE=$3 LAB_STORE=$4
  # A 10.X.0.0/24 that no interface here uses yet.
  LAB_NET=$(( 100 + $$ % 100 ))
  while ip -4 -o addr show | grep -q " 10\.$LAB_NET\.0\."; do LAB_NET=$(( (LAB_NET - 99) % 150 + 100 )); done
  LAB_HUB=$LAB_TAG-hub
  LAB_LINKS=()
  LAB_DIR=$(mktemp -d)
  lab_ip netns add "$LAB_HUB"
  lab_ip -n "$LAB_HUB" link add labbr type bridge
  lab_ip -n "$LAB_HUB" link set labbr up
  # This namespace on the bridge too (uncapped), to reach the master's REST port.
  lab_ip link add "$LAB_TAG-r" type veth peer name "$LAB_TAG-rh"
  lab_ip link set "$LAB_TAG-rh" netns "$LAB_HUB"
  lab_ip -n "$LAB_HUB" link set "$LAB_TAG-rh" master labbr
  lab_ip -n "$LAB_HUB" link set "$LAB_TAG-rh" up
  lab_ip addr add "10.$LAB_NET.0.254/24" dev "$LAB_TAG-r"
  lab_ip link set "$LAB_TAG-r" up
  local k
  lab_ip netns add "$LAB_TAG-s"
  lab_link "$LAB_TAG-s" eth0 "$LAB_TAG-vs" "10.$LAB_NET.0.250"
  lab_ip netns add "$LAB_TAG-m"
  lab_link "$LAB_TAG-m" eth0 "$LAB_TAG-vm" "10.$LAB_NET.0.1"
  for k in $(seq "$LAB_N"); do
    lab_ip netns add "$LAB_TAG-w$k"
    lab_link "$LAB_TAG-w$k" eth0 "$LAB_TAG-v$k" "10.$LAB_NET.0.$((10 + k))"
  done
  # The storage host: sshd serving STORE over SFTP, a key made for this lab only.
  ssh-keygen -q -t ed25519 -N '' -f "$LAB_DIR/host" >/dev/null
  ssh-keygen -q -t ed25519 -N '' -f "$LAB_DIR/client" >/dev/null
  cp "$LAB_DIR/client.pub" "$LAB_DIR/authorized"
  cat > "$LAB_DIR/sshd.conf" <<EOF
ListenAddress 10.$LAB_NET.0.250
HostKey $LAB_DIR/host
AuthorizedKeysFile $LAB_DIR/authorized
PermitRootLogin prohibit-password
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile $LAB_DIR/sshd.pid
Subsystem sftp internal-sftp
Ciphers aes128-gcm@openssh.com
EOF
  mkdir -p /run/sshd "$LAB_STORE"
  ip netns exec "$LAB_TAG-s" /usr/sbin/sshd -f "$LAB_DIR/sshd.conf" -E "$LAB_DIR/sshd.log"
}

lab_host_ip() { # HOST: m, wK, s or o
  case $1 in m) echo "10.$LAB_NET.0.1" ;; s) echo "10.$LAB_NET.0.250" ;; o) echo "10.$LAB_NET.0.249" ;; w*) echo "10.$LAB_NET.0.$((10 + ${1#w}))" ;; esac
}
lab_objects() {
  local ip=10.$LAB_NET.0.249
  lab_ip netns add "$LAB_TAG-o"
  lab_link "$LAB_TAG-o" eth0 "$LAB_TAG-vo" "$ip" "$1"
  case ${2:-moto} in
    moto)
      ip netns exec "$LAB_TAG-o" python3 -c '
import sys, time
from moto.server import ThreadedMotoServer
ThreadedMotoServer(ip_address=sys.argv[1], port=9000).start()
while True: time.sleep(3600)' "$ip" >"$LAB_DIR/objects.log" 2>&1 & ;;
    s3s-fs)
      mkdir -p "$LAB_DIR/objects"
      ip netns exec "$LAB_TAG-o" env RUST_LOG=warn "${S3S_FS:-s3s-fs}" --host "$ip" --port 9000 \
        --access-key lab --secret-key lab-secret "$LAB_DIR/objects" >"$LAB_DIR/objects.log" 2>&1 & ;;
    *) echo "lab_objects: no object server ${2} (moto or s3s-fs)" >&2; return 2 ;;
  esac
  # Not a pid-* file: those are the cluster's, which scaling.sh stops between runs; the
  # object server lives as long as the lab (lab_down ends every process of its namespaces).
  echo $! > "$LAB_DIR/objects.pid"
  local deadline=$((SECONDS + 30))
  until curl -s -o /dev/null "http://$ip:9000/"; do
    [ $SECONDS -lt $deadline ] || { cat "$LAB_DIR/objects.log" >&2; return 1; }
    sleep 0.2
  done
}

# lab_run HOST CMD...: CMD in HOST's namespace and a mount namespace of its own, the share
# mounted at $LAB_MNT (no attribute or directory cache: a file one host closes is seen whole
# by the next that opens it, as NFS's close-to-open).
lab_run() {
  local host=$1; shift
  ip netns exec "$LAB_TAG-$host" unshare -m --propagation private sh -c '
    mkdir -p "$0" && sshfs "root@$1:$2" "$0" -o "IdentityFile=$3,StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,dir_cache=no,attr_timeout=0,entry_timeout=0,negative_timeout=0,max_conns=4,reconnect,idmap=none" || exit 97
    echo $$ > "$4"; shift 4; exec "$@"' "$LAB_MNT" "10.$LAB_NET.0.250" "$LAB_STORE" "$LAB_DIR/client" "$LAB_DIR/pid-$host" "$@"
}

lab_bytes() {
  local l ns inner outer
  for l in "${LAB_LINKS[@]}"; do
    IFS=: read -r ns inner outer _ <<<"$l"
    # Sent by the host: its end's egress; received: the hub end's egress toward it.
    echo "${ns#"$LAB_TAG"-} $(lab_sent "$ns" "$inner") $(lab_sent "$LAB_HUB" "$outer")"
  done
}

lab_sent() { ip -n "$1" -s -j link show dev "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["bytes"])'; }

lab_reset_counters() { # counters cannot be zeroed: remember where they stand
  lab_bytes > "$LAB_DIR/base"
}

lab_bytes_since() { # "host sent received" since lab_reset_counters
  python3 - "$LAB_DIR/base" <(lab_bytes) <<'PY'
import sys
base = {l.split()[0]: list(map(int, l.split()[1:])) for l in open(sys.argv[1])}
for l in open(sys.argv[2]):
    h, s, r = l.split(); b = base.get(h, [0, 0])
    print(h, int(s) - b[0], int(r) - b[1])
PY
}

lab_down() {
  [ -n "${LAB_TAG:-}" ] || return 0
  # Whatever runs in a lab host (sshd's sessions too), then sshfs and its ssh.
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^$LAB_TAG-"); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
  done
  pkill -f "$LAB_DIR/client" 2>/dev/null || true
  for ns in $(ip netns list | awk '{print $1}' | grep "^$LAB_TAG-"); do ip netns del "$ns" 2>/dev/null; done
  ip link del "$LAB_TAG-r" 2>/dev/null
  rm -rf "$LAB_DIR"
  LAB_TAG=
}
