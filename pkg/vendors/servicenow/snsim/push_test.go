package snsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// verify checks a push exactly as the connector must: HMAC-SHA256 of the raw
// body with the secret, hex, after "sha256=".
func verify(t *testing.T, secret string, r received) PushBody {
	t.Helper()
	sig, ok := strings.CutPrefix(r.header.Get("X-Signature"), "sha256=")
	require.True(t, ok, r.header.Get("X-Signature"))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(r.body)
	require.Equal(t, hex.EncodeToString(m.Sum(nil)), sig)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	return decode[PushBody](t, r.body)
}

func TestPushOnInsertUpdateDelete(t *testing.T) {
	s, clk := testSim(t, nil)
	in := s.Default()
	rc := newReceiver(t)
	sub, err := in.Subscribe(Subscription{Tables: []string{"incident", "problem"}, URL: rc.URL, Secret: "s3cret"})
	require.NoError(t, err)
	require.NotEmpty(t, sub.ID)
	require.Empty(t, in.Subscriptions()[0].Secret, "secrets are not listed")

	rec, err := in.Insert("incident", Record{"short_description": "Printer on fire"}, WriteOptions{})
	require.NoError(t, err)
	clk.Advance(time.Minute)
	_, err = in.Update("incident", rec["sys_id"], Record{"state": "2"}, WriteOptions{})
	require.NoError(t, err)
	clk.Advance(time.Minute)
	_, err = in.AddJournal("incident", rec["sys_id"], "comments", "on it", WriteOptions{})
	require.NoError(t, err)
	_, err = in.AddAttachment("incident", rec["sys_id"], "a.txt", "text/plain", []byte("x"), WriteOptions{})
	require.NoError(t, err)
	chg := mustRecords(t, in, "change_request")[0]
	_, err = in.Update("change_request", chg["sys_id"], Record{"state": "-1"}, WriteOptions{})
	require.NoError(t, err, "not a subscribed table")
	clk.Advance(time.Minute)
	require.NoError(t, in.Delete("incident", rec["sys_id"], WriteOptions{}))
	waitIdle(t, s)

	got := rc.all()
	require.Len(t, got, 4)
	ops := []string{}
	for i, r := range got {
		b := verify(t, "s3cret", r)
		require.Equal(t, "incident", b.Table)
		require.Equal(t, rec["sys_id"], b.SysID)
		require.Nil(t, b.Record, "no record without IncludeRecord")
		require.Equal(t, fmtTime(testStart.Add(time.Duration(i)*time.Minute)), b.SysUpdatedOn)
		ops = append(ops, b.Operation)
	}
	require.Equal(t, []string{"insert", "update", "update", "delete"}, ops)
	// Members in the documented order.
	require.True(t, strings.HasPrefix(string(got[0].body), `{"table":"incident","sys_id":"`+rec["sys_id"]+`","operation":"insert","sys_updated_on":"`))
	st := s.Deliveries()
	require.Equal(t, 4, st.Delivered)
	require.Equal(t, 0, st.Pending)
	require.Len(t, s.Pushes(), 4)

	require.NoError(t, in.Unsubscribe(sub.ID))
	_, err = in.Insert("incident", Record{}, WriteOptions{})
	require.NoError(t, err)
	waitIdle(t, s)
	require.Len(t, rc.all(), 4)
	require.ErrorIs(t, in.Unsubscribe(sub.ID), ErrNotFound)
}

func TestPushWithRecordAndSkippedBusinessRules(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	rc := newReceiver(t)
	_, err := in.Subscribe(Subscription{Tables: []string{"incident"}, URL: rc.URL, Secret: "k", IncludeRecord: true})
	require.NoError(t, err)
	inc := mustRecords(t, in, "incident")[0]
	_, err = in.Update("incident", inc["sys_id"], Record{"state": "6"}, WriteOptions{SkipWorkflow: true})
	require.NoError(t, err)
	require.NoError(t, in.Delete("incident", inc["sys_id"], WriteOptions{SkipWorkflow: true}))
	up, err := in.Update("incident", mustRecords(t, in, "incident")[0]["sys_id"], Record{"impact": "1"}, WriteOptions{As: "itsm.integration"})
	require.NoError(t, err)
	waitIdle(t, s)
	got := rc.all()
	require.Len(t, got, 1, "setWorkflow(false) writes send nothing")
	require.Equal(t, 2, s.Deliveries().Skipped)
	b := verify(t, "k", got[0])
	require.Equal(t, up["sys_id"], b.Record["sys_id"])
	require.Equal(t, "itsm.integration", b.Record["sys_updated_by"])
	require.Equal(t, up["priority"], b.Record["priority"])
	// The record has the Table API's default shape.
	for k, v := range b.Record {
		switch v := v.(type) {
		case string:
		case map[string]any:
			require.ElementsMatch(t, []string{"link", "value"}, keysOf(v), k)
		default:
			t.Fatalf("%s is %T", k, v)
		}
	}
	require.Equal(t, up["assignment_group"], b.Record["assignment_group"].(map[string]any)["value"])
}

func keysOf(m map[string]any) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPushFaults(t *testing.T) {
	s, _ := testSim(t, func(o *Options) { o.Faults = Faults{DropProb: 0.3, DuplicateProb: 0.3} })
	in := s.Default()
	rc := newReceiver(t)
	_, err := in.Subscribe(Subscription{Tables: []string{"incident"}, URL: rc.URL, Secret: "k"})
	require.NoError(t, err)
	incs := mustRecords(t, in, "incident")
	for i := 0; i < 40; i++ {
		_, err := in.Update("incident", incs[i]["sys_id"], Record{"urgency": "1"}, WriteOptions{})
		require.NoError(t, err)
	}
	waitIdle(t, s)
	st := s.Deliveries()
	require.Equal(t, 40, st.Events)
	require.Positive(t, st.Dropped)
	require.Positive(t, st.Duplicated)
	require.Len(t, rc.all(), 40-st.Dropped+st.Duplicated)
	bodies := map[string]int{}
	for _, r := range rc.all() {
		verify(t, "k", r)
		bodies[string(r.body)]++
	}
	dups := 0
	for _, n := range bodies {
		dups += n - 1
	}
	require.Equal(t, st.Duplicated, dups, "a duplicate carries the same bytes")

	// Reordering: a batch is sent shuffled.
	s.SetFaults(Faults{ReorderBatch: 10, ReorderHold: Duration(time.Second)})
	rc2 := newReceiver(t)
	_, err = in.Subscribe(Subscription{Tables: []string{"problem"}, URL: rc2.URL, Secret: "k"})
	require.NoError(t, err)
	prbs := mustRecords(t, in, "problem")
	for i := 0; i < 10; i++ {
		_, err := in.Update("problem", prbs[i]["sys_id"], Record{"urgency": "1"}, WriteOptions{})
		require.NoError(t, err)
	}
	waitIdle(t, s)
	var order []string
	for _, r := range rc2.all() {
		order = append(order, verify(t, "k", r).SysID)
	}
	require.Len(t, order, 10)
	want := []string{}
	for i := 0; i < 10; i++ {
		want = append(want, prbs[i]["sys_id"])
	}
	require.ElementsMatch(t, want, order)
	require.NotEqual(t, want, order)

	// Delays still deliver everything.
	s.SetFaults(Faults{MaxDelay: Duration(30 * time.Millisecond)})
	for i := 10; i < 12; i++ {
		_, err := in.Update("problem", prbs[i]["sys_id"], Record{"urgency": "2"}, WriteOptions{})
		require.NoError(t, err)
	}
	waitIdle(t, s)
	require.Len(t, rc2.all(), 12)
}

func TestSubscribeValidates(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	for _, sub := range []Subscription{
		{Tables: []string{"incident"}, URL: "not a url", Secret: "k"},
		{Tables: []string{"incident"}, URL: "http://x.example.com/"},
		{URL: "http://x.example.com/", Secret: "k"},
		{Tables: []string{"nope"}, URL: "http://x.example.com/", Secret: "k"},
	} {
		_, err := in.Subscribe(sub)
		require.Error(t, err)
	}
	// The widely published HMAC-SHA256 example (key "key", the quick brown fox).
	require.Equal(t, "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8", Sign("key", []byte("The quick brown fox jumps over the lazy dog")))
}

func TestPushesOfJournalAttachmentsAndTags(t *testing.T) {
	s, _ := testSim(t, nil)
	in := s.Default()
	rc := newReceiver(t)
	_, err := in.Subscribe(Subscription{Tables: []string{"sys_journal_field", "sys_attachment", "label_entry"}, URL: rc.URL, Secret: "k", IncludeRecord: true})
	require.NoError(t, err)
	inc := mustRecords(t, in, "incident")[0]
	j, err := in.AddJournal("incident", inc["sys_id"], "comments", "hi", WriteOptions{})
	require.NoError(t, err)
	a, err := in.AddAttachment("incident", inc["sys_id"], "x.txt", "text/plain", []byte("x"), WriteOptions{})
	require.NoError(t, err)
	l, err := in.AddTag("incident", inc["sys_id"], "vip", WriteOptions{})
	require.NoError(t, err)
	waitIdle(t, s)
	got := map[string]string{}
	for _, r := range rc.all() {
		b := verify(t, "k", r)
		require.Equal(t, "insert", b.Operation)
		require.Equal(t, b.SysID, b.Record["sys_id"])
		got[b.Table] = b.SysID
	}
	require.Equal(t, map[string]string{"sys_journal_field": j["sys_id"], "sys_attachment": a["sys_id"], "label_entry": l["sys_id"]}, got)
}
