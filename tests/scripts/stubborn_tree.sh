#!/usr/bin/env bash
# A task that resists being stopped: every process ignores SIGTERM, and some leave the task's process
# group and session (setsid, double fork, a scrubbed environment). Each writes its pid to
# $PID_DIR/<role>.pid so a test can check that a cancel left nothing behind.
set -u
trap '' TERM  # ignored signals stay ignored across fork and exec: every descendant ignores TERM
echo $$ > "$PID_DIR/bash.pid"
sleep 600 & echo $! > "$PID_DIR/child.pid"
( sleep 600 & echo $! > "$PID_DIR/grandchild.pid"; wait ) &
setsid bash -c 'echo $$ > "$PID_DIR/setsid.pid"; sleep 600 & echo $! > "$PID_DIR/setsid_child.pid"; wait' &
( setsid bash -c 'echo $$ > "$PID_DIR/orphan.pid"; exec sleep 600' & )
( setsid env -i PID_DIR="$PID_DIR" /bin/bash -c 'echo $$ > "$PID_DIR/scrubbed.pid"; exec sleep 600' & )
python3 -c 'import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(os.environ["PID_DIR"] + "/python.pid", "w").write(str(os.getpid()))
time.sleep(600)' &
echo "stubborn tree started"
wait
