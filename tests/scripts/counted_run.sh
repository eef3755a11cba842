# Appends one line to $COUNTER_FILE per run (a side effect that must happen exactly once), then
# prints numbered lines slowly for about $SECONDS_TO_RUN seconds, recording progress in $COUNTER_FILE.progress.
echo "run $$" >> "$COUNTER_FILE"
for i in $(seq 1 $((SECONDS_TO_RUN * 20))); do
  echo "line $i"
  echo "$i" > "$COUNTER_FILE.progress"
  sleep 0.05
done
echo done
