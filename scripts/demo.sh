#!/usr/bin/env bash
# The demo: both vendors' simulators and the platform side by side.
# Jira: it creates a connection, completes OAuth the way a customer's browser
# would (consent at Jira, then Confirm on the platform's page), then changes
# issues in the simulator and shows the normalized tickets arriving.
# ServiceNow: a connection with basic auth (tested at once), the business
# rule's pushes subscribed with the connection's push secret, then incidents
# created, commented and deleted at the instance.
set -euo pipefail
cd "$(dirname "$0")/.."

SIM=127.0.0.1:9090
SNSIM=127.0.0.1:9091
API=127.0.0.1:8080
METRICS=127.0.0.1:9102
KEY=demo-api-key-0123456789
DATA=$(mktemp -d /tmp/itsm-demo.XXXXXX)
LOGS=$DATA/logs
mkdir -p bin "$LOGS"

echo "== building"
go build -o bin/ ./cmd/itsm ./cmd/jirasim ./cmd/snsim

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

echo "== starting the ServiceNow simulator on $SNSIM"
bin/snsim -addr "$SNSIM" -seed 42 -incidents 5 -problems 2 -changes 0 -request-items 0 -catalog-tasks 0 -links-from-request \
  >"$LOGS/snsim.log" 2>&1 &
pids+=($!)

echo "== starting the platform on $API (data in $DATA)"
ITSM_DEV=true ITSM_HTTP_ADDR=$API ITSM_METRICS_ADDR=$METRICS ITSM_NATS_LISTEN=127.0.0.1:0 ITSM_DATA_DIR="$DATA" \
ITSM_API_KEYS="demo-org:$KEY" ITSM_JIRA_CLIENT_ID=demo-client ITSM_JIRA_CLIENT_SECRET=demo-secret \
ITSM_JIRA_AUTH_URL="http://$SIM" ITSM_JIRA_API_URL="http://$SIM" \
  bin/itsm run >"$LOGS/itsm.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
  curl -sf "http://$API/readyz" >/dev/null 2>&1 && curl -sf "http://$SIM/_sim/info" >/dev/null 2>&1 &&
    curl -sf "http://$SNSIM/_sim/info" >/dev/null 2>&1 && break
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

echo
echo "######## ServiceNow ########"
echo "== POST /v1/connections (basic auth; the platform tests the credentials at once)"
sncreated=$(curl -sf -X POST "http://$API/v1/connections" -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
  -d "{\"vendor\":\"SERVICENOW\",\"options\":{\"instance_url\":\"http://$SNSIM\",\"tables\":[\"incident\",\"problem\"],
       \"auth\":{\"type\":\"basic\",\"username\":\"itsm.integration\",\"password\":\"integration-password\"}}}")
echo "$sncreated" | pretty
snconn=$(echo "$sncreated" | field id)

echo "== the business rule the customer pastes at the instance (its push URL and secret filled in)"
rule=$(curl -sf "http://$API/v1/connections/$snconn/servicenow/business-rule" -H "X-API-Key: $KEY")
echo "$rule" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("   url:", r["url"]); print("   tables:", ", ".join(r["tables"])); print("   script: %d lines" % len(r["script"].splitlines()))' 2>/dev/null || true
secret=$(echo "$rule" | python3 -c '
import json, re, sys
m = re.search(r"SECRET\s*=\s*[\x22\x27]([^\x22\x27]+)", json.load(sys.stdin)["script"])
print(m.group(1) if m else "")' 2>/dev/null || true)
if [ -n "$secret" ]; then
  echo "== the simulated instance runs that business rule: pushes signed with the connection's secret"
  curl -sf -X POST "http://$SNSIM/_sim/push/subscriptions" -H 'Content-Type: application/json' \
    -d "{\"url\":\"http://$API/webhooks/servicenow/$snconn\",\"secret\":\"$secret\",\"tables\":[\"incident\",\"problem\",\"sys_journal_field\"],\"include_record\":true}" >/dev/null
fi

snshow() {
  echo "-- ServiceNow tickets now:"
  curl -sf "http://$API/v1/itsm/tickets?connection_id=$snconn&limit=20" -H "X-API-Key: $KEY" |
    python3 -c '
import json, sys
for t in json.load(sys.stdin)["items"]:
    print("   %-11s %-12s %-13s %s" % (t["identifier"], t["status"], t["priority"], t["name"]))' 2>/dev/null || true
}
echo "== the first full sync brought in the seeded incidents and problems"
for _ in $(seq 50); do
  n=$(curl -sf "http://$API/v1/itsm/tickets?connection_id=$snconn&limit=1" -H "X-API-Key: $KEY" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))' 2>/dev/null || echo 0)
  [ "$n" != 0 ] && break; sleep 0.2
done
snshow
echo "== creating an incident at the instance (pushed by the business rule)"
inc=$(curl -sf -X POST "http://$SNSIM/_sim/records/incident" -H 'Content-Type: application/json' \
  -d '{"fields":{"short_description":"Email down for the sales floor","priority":"1","impact":"1","urgency":"1"}}')
incid=$(echo "$inc" | field sys_id)
sleep 1; snshow
echo "== putting it on hold, awaiting the vendor"
curl -sf -X PATCH "http://$SNSIM/_sim/records/incident/$incid" -H 'Content-Type: application/json' \
  -d '{"fields":{"state":"3","hold_reason":"4"}}' >/dev/null
sleep 1; snshow
echo "== a work note at the instance"
curl -sf -X POST "http://$SNSIM/_sim/records/incident/$incid/journal" -H 'Content-Type: application/json' \
  -d '{"element":"work_notes","value":"Vendor ticket opened."}' >/dev/null
sleep 1
incticket=$(curl -sf "http://$API/v1/itsm/tickets/by-identifier/$(echo "$inc" | field number)?connection_id=$snconn" -H "X-API-Key: $KEY" | field id)
echo "-- its comments (work notes are marked internal):"
curl -sf "http://$API/v1/itsm/comments?ticket_id=$incticket" -H "X-API-Key: $KEY" |
  python3 -c '
import json, sys
for c in json.load(sys.stdin)["items"]:
    print("   %-9s internal=%-5s %s" % (c["vendor_attributes"].get("element"), c["vendor_attributes"].get("internal"), c["body"]))' 2>/dev/null || true
echo "== deleting it at the instance"
curl -sf -X DELETE "http://$SNSIM/_sim/records/incident/$incid" >/dev/null
sleep 1; snshow
echo "== the ServiceNow connection's status"
curl -sf "http://$API/v1/connections/$snconn" -H "X-API-Key: $KEY" | pretty

if [ "${DEMO_WAIT:-}" = 1 ]; then echo "== running; Ctrl-C to stop"; wait; fi
