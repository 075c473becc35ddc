package servicenow

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// BusinessRule is what the business-rule script of a connection is
// rendered from.
type BusinessRule struct {
	// URL is the connection's push URL
	// (https://<host>/webhooks/servicenow/<connection_id>).
	URL string
	// Secret is the connection's push secret.
	Secret string
	// Tables to paste the rule on (the connection's tables and, for
	// comments, sys_journal_field).
	Tables []string
	// IncludeRecord sends the record with each push, so that the platform
	// needs no call back to the instance; without it a push is a hint
	// that the platform follows with a re-read.
	IncludeRecord bool
}

// BusinessRuleFor is the business rule of a connection: its push URL
// under webhookBase (https://itsm.example.com), its tables and
// sys_journal_field (comments), the record sent with each push.
func BusinessRuleFor(connectionID string, tables []string, webhookBase, secret string) BusinessRule {
	if len(tables) == 0 {
		tables = []string{"incident"}
	}
	return BusinessRule{
		URL:           strings.TrimRight(webhookBase, "/") + "/webhooks/servicenow/" + connectionID,
		Secret:        secret,
		Tables:        append(slices.Clone(tables), "sys_journal_field"),
		IncludeRecord: true,
	}
}

// Script renders the ready-to-paste script of an after insert/update/delete
// business rule that posts the push contract (see ParsePush) signed with
// X-Signature: sha256=<hex HMAC-SHA256 of the body>. GlideCertificateEncryption
// generateMac takes the key base64-encoded and returns the MAC in base64;
// the script turns it into hex. That generateMac takes the data as UTF-8,
// as RESTMessageV2 sends the body, is unconfirmed. The post is asynchronous
// (RESTMessageV2.executeAsync) and never retried: the incremental sync is
// the net for pushes that are lost, and for writes made with
// setWorkflow(false), which run no business rule.
func (b BusinessRule) Script() string {
	var s strings.Builder
	fmt.Fprintf(&s, `// ITSM platform push. Paste as a Business Rule (System Definition > Business Rules > New)
// on each of these tables: %s
//   When: after; Insert, Update and Delete checked; Advanced checked; this script in "Script".
(function executeRule(current, previous) {
	var URL = %s;
	var SECRET = %s;
	var INCLUDE_RECORD = %t;

	function hex(b64) {
		var abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		var out = "", bits = 0, acc = 0;
		for (var i = 0; i < b64.length; i++) {
			var v = abc.indexOf(b64.charAt(i));
			if (v < 0) continue;
			acc = (acc << 6) | v; bits += 6;
			if (bits >= 8) {
				bits -= 8;
				var byt = (acc >> bits) & 0xff;
				out += (byt < 16 ? "0" : "") + byt.toString(16);
			}
		}
		return out;
	}

	var op = String(current.operation());
	var when = op == "delete" ? new GlideDateTime().getValue()
		: (current.getValue("sys_updated_on") || current.getValue("sys_created_on"));
	var body = '{"table":' + JSON.stringify(String(current.getTableName())) +
		',"sys_id":' + JSON.stringify(String(current.getUniqueValue())) +
		',"operation":' + JSON.stringify(op) +
		',"sys_updated_on":' + JSON.stringify(String(when || ""));
	if (INCLUDE_RECORD) {
		var rec = {};
		var fields = current.getFields();
		for (var i = 0; i < fields.size(); i++) {
			var el = fields.get(i);
			var type = String(el.getED().getInternalType());
			if (type.indexOf("journal") == 0) continue;
			var v = el.getValue();
			rec[String(el.getName())] = v == null ? "" : String(v);
		}
		body += ',"record":' + JSON.stringify(rec);
	}
	body += "}";

	var mac = new GlideCertificateEncryption().generateMac(GlideStringUtil.base64Encode(SECRET), "HmacSHA256", body);
	var r = new sn_ws.RESTMessageV2();
	r.setEndpoint(URL);
	r.setHttpMethod("post");
	r.setRequestHeader("Content-Type", "application/json");
	r.setRequestHeader("X-Signature", "sha256=" + hex(String(mac)));
	r.setRequestBody(body);
	r.executeAsync();
})(current, previous);
`, strings.Join(b.Tables, ", "), strconv.Quote(b.URL), strconv.Quote(b.Secret), b.IncludeRecord)
	return s.String()
}
