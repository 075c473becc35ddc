package servicenow_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
)

// glide plays the parts of the instance the business rule calls, in
// Node.js: the record, GlideDateTime, GlideStringUtil, the MAC (key
// base64-encoded, MAC returned in base64, as the ServiceNow docs say) and
// RESTMessageV2, which prints what it would post.
const glide = `
const crypto = require("crypto");
const fields = JSON.parse(process.env.RECORD);
function el(name, type) { return { getName: () => name, getValue: () => fields[name] === "" ? null : fields[name], getED: () => ({ getInternalType: () => type }) }; }
const list = Object.keys(fields).map(n => el(n, "string")).concat([el("comments", "journal_input")]);
var current = {
	operation: () => process.env.OP,
	getTableName: () => "incident",
	getUniqueValue: () => fields.sys_id,
	getValue: n => fields[n] === undefined || fields[n] === "" ? null : fields[n],
	getFields: () => ({ size: () => list.length, get: i => list[i] }),
};
var previous = null;
function GlideDateTime() { this.getValue = () => "2026-01-15 09:31:00"; }
var GlideStringUtil = { base64Encode: s => Buffer.from(s, "utf8").toString("base64") };
function GlideCertificateEncryption() {
	this.generateMac = (key, alg, data) => crypto.createHmac("sha256", Buffer.from(key, "base64")).update(data, "utf8").digest("base64");
}
var sn_ws = { RESTMessageV2: function () {
	const req = { headers: {} };
	this.setEndpoint = u => req.url = u;
	this.setHttpMethod = m => req.method = m;
	this.setRequestHeader = (k, v) => req.headers[k] = v;
	this.setRequestBody = b => req.body = b;
	this.executeAsync = () => process.stdout.write(JSON.stringify(req));
} };
`

func TestBusinessRuleScriptSignsWhatVerifyPushAccepts(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	br := servicenow.BusinessRuleFor("conn-1", []string{"incident"}, "https://itsm.example.com/", `s3"cret`)
	require.Equal(t, "https://itsm.example.com/webhooks/servicenow/conn-1", br.URL)
	require.Equal(t, []string{"incident", "sys_journal_field"}, br.Tables)
	script := filepath.Join(t.TempDir(), "rule.js")
	require.NoError(t, os.WriteFile(script, []byte(glide+br.Script()), 0o600))

	record := map[string]string{"sys_id": "9ef81de2db0d6090d7055268dc961978", "number": "INC0010001",
		"short_description": "Ünïcode \"quoted\" mail down", "state": "2", "priority": "1", "sys_class_name": "incident",
		"sys_updated_on": "2026-01-15 09:30:00", "sys_mod_count": "3", "assigned_to": "", "active": "true"}
	rb, _ := json.Marshal(record)
	for _, op := range []string{"update", "delete"} {
		cmd := exec.Command(node, script)
		cmd.Env = append(os.Environ(), "RECORD="+string(rb), "OP="+op)
		out, err := cmd.Output()
		require.NoError(t, err)
		var req struct {
			URL, Method, Body string
			Headers           map[string]string
		}
		require.NoError(t, json.Unmarshal(out, &req))
		require.Equal(t, br.URL, req.URL)
		require.Equal(t, "post", req.Method)
		require.True(t, strings.HasPrefix(req.Headers["X-Signature"], "sha256="))
		require.NoError(t, servicenow.VerifyPush(`s3"cret`, []byte(req.Body), req.Headers["X-Signature"]))

		p, err := servicenow.ParsePush([]byte(req.Body))
		require.NoError(t, err)
		require.Equal(t, op, p.Operation)
		require.Equal(t, record["sys_id"], p.SysID)
		recs, err := servicenow.Mapper{}.MapWebhook(conn(), []byte(req.Body))
		require.NoError(t, err)
		tk := recs[0].Object.(*itsm.Ticket)
		require.Equal(t, record["short_description"], tk.Name)
		require.NotContains(t, tk.VendorAttributes["fields"], "comments") // journal fields are not sent
		if op == "delete" {
			require.True(t, recs[0].Deleted)
			require.Equal(t, utc("2026-01-15 09:31:00").Add(999*1e6), recs[0].Version)
		} else {
			require.Equal(t, itsm.StatusInProgress, tk.Status)
			require.Equal(t, itsm.PriorityCritical, tk.Priority)
		}
	}
}
