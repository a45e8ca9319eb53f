# Background processes with pid files (sourced by up.sh and down.sh).
# A pid counts as ours only while /proc/PID/exe is still the binary we started, so a reused pid
# is never signalled.

proc_pidfile() { printf '%s/%s.pid\n' "$TRELLIS_RUN_DIR" "$1"; }

# proc_pid NAME: prints the pid if the process recorded for NAME is alive and is still our binary.
proc_pid() {
  local f pid exe want
  f="$(proc_pidfile "$1")"
  [[ -f "$f" ]] || return 1
  read -r pid want <"$f" || return 1
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [[ "$exe" == "$want" ]] || return 1
  printf '%s\n' "$pid"
}

# cluster_lock: one up.sh/down.sh at a time per cluster dir (up.sh calls down.sh, which then
# runs under the lock it inherited). The lock file sits beside the dir so --purge keeps it.
cluster_lock() {
  [[ -z "${TRELLIS_CLUSTER_LOCKED:-}" ]] || return 0
  mkdir -p "$(dirname "$TRELLIS_CLUSTER_DIR")"
  exec 9>"$TRELLIS_CLUSTER_DIR.lock"
  if ! flock -n 9; then
    trellis_log "another cluster up/down holds $TRELLIS_CLUSTER_DIR.lock: waiting"
    flock 9
  fi
  export TRELLIS_CLUSTER_LOCKED=1
}

# proc_start NAME BINARY ARGS...: new session, stdin closed, output to logs/NAME.log.
# With PROC_NETNS set the process runs in that network namespace (only: it keeps the host's mount
# namespace, so the kubelet's volume mounts stay visible to containerd); with PROC_CGROUPS (a list
# of cgroup directories) it joins them before it starts, so all it forks (shims) lands there too.
proc_start() {
  local name="$1" bin="$2" pid want i
  shift 2
  mkdir -p "$TRELLIS_RUN_DIR" "$TRELLIS_LOG_DIR"
  [[ -f "$TRELLIS_LOG_DIR/$name.log" ]] && mv -f "$TRELLIS_LOG_DIR/$name.log" "$TRELLIS_LOG_DIR/$name.previous.log"
  want="$(readlink -f "$bin")"
  # setsid execs in place (a background child of a script is no group leader), so $! is the daemon;
  # the wrapper and nsenter exec in place too. Descriptors 3-9 are closed: the daemon must hold
  # neither the up/down lock (9) nor a lock a caller took with flock(1) (which would stay held for
  # as long as the cluster runs).
  if [[ -n "${PROC_NETNS:-}${PROC_CGROUPS:-}" ]]; then
    local netns=()
    [[ -z "${PROC_NETNS:-}" ]] || netns=(nsenter "--net=/run/netns/$PROC_NETNS" --)
    # shellcheck disable=SC2016
    setsid sh -c 'for g in $0; do echo $$ >"$g/cgroup.procs"; done; exec "$@"' "${PROC_CGROUPS:-}" \
      "${netns[@]}" "$bin" "$@" </dev/null >"$TRELLIS_LOG_DIR/$name.log" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    pid=$!
    # Until the wrapper has exec'd, /proc/PID/exe is the shell: wait so proc_pid sees the daemon.
    for ((i = 0; i < 50; i++)); do
      [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$want" || ! -d "/proc/$pid" ]] && break
      sleep 0.02
    done
  else
    setsid "$bin" "$@" </dev/null >"$TRELLIS_LOG_DIR/$name.log" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    pid=$!
  fi
  printf '%s %s\n' "$pid" "$want" >"$(proc_pidfile "$name")"
  trellis_log "started $name (pid $pid, log $TRELLIS_LOG_DIR/$name.log)"
}

# proc_stop NAME [GRACE_SECONDS]: SIGTERM, wait, then SIGKILL. No-op when not running.
proc_stop() {
  local name="$1" grace="${2:-15}" pid i
  if pid="$(proc_pid "$name")"; then
    trellis_log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      [[ -d "/proc/$pid" ]] || break
      sleep 0.1
    done
    if [[ -d "/proc/$pid" ]]; then
      trellis_log "$name did not stop in ${grace}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while [[ -d "/proc/$pid" ]]; do sleep 0.1; done
    fi
  fi
  rm -f "$(proc_pidfile "$name")"
}

# wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what="$1" timeout="$2" start=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - start >= timeout)); then
      trellis_log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

# cri_remove_pods [NODE_DIR]: stops and removes every pod sandbox of a node through the CRI
# (containers, CNI DEL, netns, mounts). Needs its containerd serving and NODE_DIR/crictl.yaml.
cri_remove_pods() {
  local crictl=("$(trellis_bin crictl)" --config "${1:-$TRELLIS_CLUSTER_DIR}/crictl.yaml") pods
  pods="$("${crictl[@]}" pods -q 2>/dev/null || true)"
  [[ -n "$pods" ]] || return 0
  trellis_log "removing $(wc -w <<<"$pods") pod sandbox(es)"
  # shellcheck disable=SC2086
  "${crictl[@]}" stopp $pods >/dev/null || true
  # shellcheck disable=SC2086
  "${crictl[@]}" rmp -f $pods >/dev/null || true
}
