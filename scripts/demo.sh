#!/usr/bin/env bash
# The demo: the Jira simulator and the platform side by side. It creates a
# connection, completes OAuth the way a customer's browser would (consent at
# Jira, then Confirm on the platform's page), then changes
# issues in the simulator and shows the normalized tickets arriving.
set -euo pipefail
cd "$(dirname "$0")/.."

SIM=127.0.0.1:9090
API=127.0.0.1:8080
METRICS=127.0.0.1:9102
KEY=demo-api-key-0123456789
DATA=$(mktemp -d /tmp/itsm-demo.XXXXXX)
LOGS=$DATA/logs
mkdir -p bin "$LOGS"

echo "== building"
go build -o bin/ ./cmd/itsm ./cmd/jirasim

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "== stopped; logs were in $LOGS"
}
trap cleanup EXIT

echo "== starting the Jira simulator on $SIM"
bin/jirasim -addr "$SIM" -seed 42 -projects 2 -issues 5 -client-id demo-client -client-secret demo-secret \
  >"$LOGS/jirasim.log" 2>&1 &
pids+=($!)

echo "== starting the platform on $API (data in $DATA)"
ITSM_DEV=true ITSM_HTTP_ADDR=$API ITSM_METRICS_ADDR=$METRICS ITSM_NATS_LISTEN=127.0.0.1:0 ITSM_DATA_DIR="$DATA" \
ITSM_API_KEYS="demo-org:$KEY" ITSM_JIRA_CLIENT_ID=demo-client ITSM_JIRA_CLIENT_SECRET=demo-secret \
ITSM_JIRA_AUTH_URL="http://$SIM" ITSM_JIRA_API_URL="http://$SIM" \
  bin/itsm run >"$LOGS/itsm.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
  curl -sf "http://$API/readyz" >/dev/null 2>&1 && curl -sf "http://$SIM/_sim/info" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://$API/readyz" >/dev/null || { echo "platform did not become ready; see $LOGS"; exit 1; }

pretty() { if command -v python3 >/dev/null; then python3 -m json.tool; else cat; echo; fi; }
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -1; }

echo "== POST /v1/connections"
created=$(curl -sf -X POST "http://$API/v1/connections" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
  -d '{"vendor":"JIRA","options":{"priority_mapping":[{"Highest":"CRITICAL"}]}}')
echo "$created" | pretty
conn=$(echo "$created" | field id)
authorize=$(echo "$created" | field oauth2_authorize_url | sed 's/\\u0026/\&/g')

echo "== the customer consents (simulator auto-consents) and Jira redirects to our callback"
callback=$(curl -s -o /dev/null -w '%{redirect_url}' "$authorize")
jar=$DATA/consent-cookies
page=$(curl -s -c "$jar" "$callback")
echo "-- the confirmation page names the organization and the site:"
echo "$page" | sed -n 's/.*<dd id="\(organization\|site\)">\([^<]*\)<.*/   \1: \2/p'
token=$(echo "$page" | sed -n 's/.*name="consent_token" value="\([^"]*\)".*/\1/p')
echo "== the administrator clicks Confirm (a form post with the page's token and cookie)"
curl -s -b "$jar" -X POST "http://$API/oauth/confirm" --data-urlencode "consent_token=$token" -d decision=confirm |
  sed -n 's/.*<h1>\([^<]*\)<.*/   \1/p'
rm -f "$jar"

show() {
  echo "-- tickets now:"
  curl -sf "http://$API/v1/itsm/tickets?connection_id=$conn&limit=10" -H "X-API-Key: $KEY" |
    python3 -c '
import json, sys
for t in json.load(sys.stdin)["items"]:
    print("   %-10s %-12s %-9s %s" % (t["identifier"], t["status"], t["priority"], t["name"]))' 2>/dev/null || true
}

show_key() {
  echo "-- $key as the API shows it now:"
  curl -s "http://$API/v1/itsm/tickets/by-identifier/$key" -H "X-API-Key: $KEY" |
    python3 -c '
import json, sys
t = json.load(sys.stdin)
print("   %-10s %-12s %-9s %s" % (t["identifier"], t["status"], t["priority"], t["name"]))' 2>/dev/null || echo "   (not there)"
}

echo "== the first full sync brought in the seeded issues"
sleep 1; show

project=$(curl -sf "http://$SIM/_sim/info" | sed -n 's/.*"projects":\["\([A-Z0-9_]*\)".*/\1/p')
echo "== creating an issue in $project in the simulator"
issue=$(curl -sf -X POST "http://$SIM/_sim/issues" -H 'Content-Type: application/json' \
  -d "{\"project\":\"$project\",\"summary\":\"Printer on fire\",\"priority\":\"Highest\"}")
key=$(echo "$issue" | field key)
sleep 1; show_key
echo "== transitioning $key to In Progress"
curl -sf -X POST "http://$SIM/_sim/issues/$key/transition" -H 'Content-Type: application/json' -d '{"status":"In Progress"}' >/dev/null
sleep 1; show_key
echo "== commenting on $key"
curl -sf -X POST "http://$SIM/_sim/issues/$key/comments" -H 'Content-Type: application/json' -d '{"body":"On it."}' >/dev/null
sleep 1
curl -sf "http://$API/v1/itsm/comments?connection_id=$conn" -H "X-API-Key: $KEY" | pretty
echo "== deleting $key"
curl -sf -X DELETE "http://$SIM/_sim/issues/$key" >/dev/null
sleep 1; show_key
echo "== connection status"
curl -sf "http://$API/v1/connections/$conn" -H "X-API-Key: $KEY" | pretty
echo "== metrics (excerpt)"
curl -sf "http://$METRICS/metrics" | grep -E '^itsm_(webhooks_total|events_published_total|normalizer_pending|dlq_messages)' || true
if [ "${DEMO_WAIT:-}" = 1 ]; then echo "== running; Ctrl-C to stop"; wait; fi
