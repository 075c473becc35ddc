package servicenow_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
)

// FuzzMapSync: any body maps or fails with one of the mapping's errors,
// never panics, and a mapped record always has an id and a version.
func FuzzMapSync(f *testing.F) {
	files, _ := filepath.Glob("snsim/testdata/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var env struct {
			Result json.RawMessage `json:"result"`
		}
		if json.Unmarshal(b, &env) == nil && len(env.Result) > 0 {
			f.Add(uint8(0), []byte(env.Result))
		}
	}
	f.Add(uint8(1), []byte(`{"sys_id":"a","element":"comments","element_id":"b","sys_created_on":"2020-01-01 00:00:00","_itsm_author":"u"}`))
	f.Add(uint8(5), []byte(`{"sys_id":"a","tablename":"incident","documentkey":"k","sys_created_on":"2020-01-01 00:00:00","payload":"<x/>"}`))
	types := []string{raw.TypeTicket, raw.TypeComment, raw.TypeAttachment, raw.TypeUser, raw.TypeGroup, raw.TypeDeletion}
	m := servicenow.Mapper{}
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		for _, tp := range []string{types[int(typ)%len(types)]} {
			recs, err := m.MapSync(conn(), raw.SyncRecord{Type: tp, Record: body, ObservedAt: time.Unix(1700000000, 0)})
			if err != nil {
				if !errors.Is(err, itsm.ErrMalformed) && !errors.Is(err, itsm.ErrUnsupportedEvent) {
					t.Fatalf("%s: unexpected error %v", tp, err)
				}
				continue
			}
			for _, r := range recs {
				if r.ID == "" || r.Version.IsZero() || r.Object == nil {
					t.Fatalf("%s: record without id, version or object: %+v", tp, r)
				}
			}
		}
		if _, err := m.MapWebhook(conn(), body); err != nil && !errors.Is(err, itsm.ErrMalformed) &&
			!errors.Is(err, itsm.ErrUnsupportedEvent) && !errors.Is(err, itsm.ErrNotAnEvent) {
			t.Fatalf("push: unexpected error %v", err)
		}
	})
}
