package jira

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/fixtures"
)

// customFieldsByMap is the straightforward implementation customFields
// replaced for speed; the fuzz test holds them equal on valid JSON.
func customFieldsByMap(raw json.RawMessage) map[string]any {
	out := map[string]any{}
	var all map[string]json.RawMessage
	_ = decodeLenient(raw, &all)
	for k, v := range all {
		if len(k) < len("customfield_") || k[:len("customfield_")] != "customfield_" || isEmptyJSON(v) {
			continue
		}
		var val any
		if json.Unmarshal(v, &val) != nil || val == nil {
			out[k] = string(v)
			continue
		}
		out[k] = val
	}
	return out
}

// fixtureBodies are the bodies of every Jira fixture, as fuzz seeds.
func fixtureBodies(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(fixtures.JiraDir(), "*", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	out := make([][]byte, 0, len(files))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzCustomFieldsMatchesMapDecode(f *testing.F) {
	for _, b := range fixtureBodies(f) {
		f.Add(b)
		var v struct {
			Issue struct {
				Fields json.RawMessage `json:"fields"`
			} `json:"issue"`
		}
		if json.Unmarshal(b, &v) == nil && v.Issue.Fields != nil {
			f.Add([]byte(v.Issue.Fields))
		}
	}
	for _, s := range []string{
		`{}`, `[]`, `null`, `"x"`, `{"customfield_1":1,"customfield_1":null}`,
		`{"customfield_1":null,"customfield_1":{"a":[1,"]}"]}}`, `{"customfield_\u0032":"esc","customfield_3":"\ud800"}`,
		` { "customfield_4" : [ ] , "a\"b" : { } , "customfield_5" : 1e400 } `, "{\"customfield_\xff\":true}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			// Callers only pass values the decoder produced; the scan must
			// still not panic on anything else.
			customFields(raw)
			return
		}
		got, want := customFields(raw), customFieldsByMap(raw)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("customFields(%s)\n got  %#v\n want %#v", raw, got, want)
		}
	})
}

func FuzzFlexStringMatchesUnmarshal(f *testing.F) {
	for _, s := range []string{`"a"`, `""`, `"\u00e0"`, `"à"`, `"\"q\""`, "\"\xff\"", `" padded "`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := json.Marshal(s)
		if err != nil {
			t.Skip()
		}
		for _, b := range [][]byte{tok, []byte(s)} {
			if !json.Valid(b) || len(b) == 0 || b[0] != '"' {
				continue
			}
			var got flexString
			if err := got.UnmarshalJSON(b); err != nil {
				t.Fatal(err)
			}
			var want string
			if json.Unmarshal(b, &want) != nil {
				continue
			}
			if string(got) != want {
				t.Fatalf("flexString(%q) = %q, want %q", b, got, want)
			}
		}
	})
}

// FuzzReferencesMatchJSONUnmarshal holds the member-by-member decoding of
// users, statuses and references equal to what json.Unmarshal into the
// same fields gives, on any valid JSON.
func FuzzReferencesMatchJSONUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"key":"K","name":"n","self":"s"}`, `"bare name"`, `null`, `[1]`, `{}`,
		`{"ID":"upper","id":"lower"}`, `{"id":"a","id":null}`, `{"Name":{"x":1},"nAmE":"folded"}`,
		`{"name":"To Do","statusCategory":{"key":"new","name":"To Do"},"StatusCategory":{"key":"done"}}`,
		`{"accountId":"5c5f","active":"false","emailAddress":null,"timeZone":"Europe/Paris","accountType":"atlassian"}`,
		`{"active":1,"ACTIVE":"true","displayName":"\u00e0 \"q\"","avatarUrls":{"48x48":"u"}}`,
		"{\"\u212aey\":\"kelvin\",\"ſelf\":\"long s\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var n named
		var st statusJSON
		var u userJSON
		_ = n.UnmarshalJSON(b)
		_ = st.UnmarshalJSON(b)
		_ = u.UnmarshalJSON(b)
		if !json.Valid(b) {
			return // never handed over by the decoder; only must not panic
		}
		type plainNamed named
		type plainStatus struct {
			ID             flexString `json:"id"`
			Name           flexString `json:"name"`
			StatusCategory named      `json:"statusCategory"`
		}
		type plainUser userJSON
		var wn plainNamed
		var ws plainStatus
		var wu plainUser
		if trimmed := bytes.TrimSpace(b); len(trimmed) > 0 && trimmed[0] == '{' {
			_ = decodeLenient(b, &wn)
			_ = decodeLenient(b, &ws)
			_ = decodeLenient(b, &wu)
		} else if len(trimmed) > 0 && trimmed[0] == '"' {
			var s flexString
			_ = s.UnmarshalJSON(trimmed)
			wn.Name, ws.Name, wu.Name = s, s, s
		}
		if named(wn) != n {
			t.Fatalf("named(%s) = %+v, want %+v", b, n, wn)
		}
		if statusJSON(ws) != st {
			t.Fatalf("statusJSON(%s) = %+v, want %+v", b, st, ws)
		}
		if userJSON(wu) != u {
			t.Fatalf("userJSON(%s) = %+v, want %+v", b, u, wu)
		}
	})
}

// FuzzDecodeFieldsMatchesJSONUnmarshal holds the one-scan decoding of an
// issue's fields equal to json.Unmarshal into fieldsJSON plus the custom
// fields of a map decode, on any valid JSON.
func FuzzDecodeFieldsMatchesJSONUnmarshal(f *testing.F) {
	for _, b := range fixtureBodies(f) {
		var v struct {
			Issue struct {
				Fields json.RawMessage `json:"fields"`
			} `json:"issue"`
			Issues []struct {
				Fields json.RawMessage `json:"fields"`
			} `json:"issues"`
		}
		_ = json.Unmarshal(b, &v)
		if v.Issue.Fields != nil {
			f.Add([]byte(v.Issue.Fields))
		}
		for _, is := range v.Issues {
			f.Add([]byte(is.Fields))
		}
	}
	for _, s := range []string{
		`{}`, `null`, `[]`, `{"Summary":"a","summary":"b"}`, `{"SUMMARY":1,"labels":"one","LABELS":["x"]}`,
		`{"description":  {"type":"doc"} ,"attachment":[{"id":1,"author":"x"},2],"status":"Open"}`,
		`{"attachment":{"id":"1"},"labels":[1,true,null,"a"],"customfield_1":null,"customfield_1":3}`,
		`{"updated":"2020-01-01T00:00:00.000+0000","assignee":null,"parent":{"id":"9","fields":{}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, gotCustom := decodeFields(raw)
		if !json.Valid(raw) {
			return // never handed over by the decoder; only must not panic
		}
		var want fieldsJSON
		_ = decodeLenient(raw, &want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeFields(%s)\n got  %#v\n want %#v", raw, got, want)
		}
		if wantCustom := customFieldsByMap(raw); !reflect.DeepEqual(gotCustom, wantCustom) {
			t.Fatalf("custom fields of %s\n got  %#v\n want %#v", raw, gotCustom, wantCustom)
		}
	})
}

// richText is PlainText and adfValue with one decode.
func FuzzRichTextMatchesPlainText(f *testing.F) {
	for _, s := range []string{``, `null`, `"wiki *text*"`, `42`, `{}`, `[]`, `{"type":`, `{"type":"doc","content":[{"type":"paragraph","content":[{"type":"text","text":"hi  "}]}]}`,
		`[{"type":"text","text":"x"}]`, `{"type":"doc","content":[{"type":"text","text":"n","x":1e400}]}`, ` {"type":"text","text":"s"} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		adf, text := richText(b)
		if want := PlainText(b); text != want {
			t.Fatalf("%q: text %q, PlainText %q", b, text, want)
		}
		// A document is kept when the field holds a JSON object.
		if b := bytes.TrimSpace(b); (adf != nil) != (len(b) > 0 && b[0] == '{' && json.Valid(b)) {
			t.Fatalf("%q: adf %v", b, adf)
		}
	})
}

func TestUserIDFromSelf(t *testing.T) {
	for self, want := range map[string]string{
		"https://x.atlassian.net/rest/api/2/user?accountId=5c5f880629be9642ba529340":        "5c5f880629be9642ba529340",
		"https://api.atlassian.com/ex/jira/c1/rest/api/3/user?accountId=557058%3Aeb43b4a2":  "557058:eb43b4a2",
		"https://jira.test-example.ru/jira/rest/api/2/user?username=jira_test":              "jira_test",
		"http://jira.local:8080/rest/api/2/user?key=JIRAUSER10100&username=renamed":         "JIRAUSER10100",
		"https://x.atlassian.net/rest/api/2/issue/10040?accountId=5c5f880629be9642ba529340": "",
		"https://x.atlassian.net/rest/api/2/user":                                           "",
		"::not a url": "",
		"":            "",
	} {
		if got := userIDFromSelf(self); got != want {
			t.Errorf("userIDFromSelf(%q) = %q, want %q", self, got, want)
		}
	}
	// A user that names itself keeps that id whatever its link says.
	u := userJSON{Self: "https://x/rest/api/2/user?username=old", Key: "k1"}
	if got := u.vendorID(); got != "k1" {
		t.Errorf("vendorID = %q, want k1", got)
	}
}
