package itsm_test

// Contract between the Go types the platform publishes (itsm.Event and the six
// objects, encoded with encoding/json) and their schema of record,
// proto/itsm/v1 (ObjectEvent, decoded with protojson). If one side changes
// without the other, these tests fail.

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/itsmhub/itsm/pkg/itsm"
	itsmv1 "github.com/itsmhub/itsm/proto/gen/go/itsm/v1"
)

func ptr[T any](v T) *T { return &v }

var (
	// Times with nanoseconds and non-UTC offsets: encoding/json writes them
	// as-is, and protojson must accept them.
	tUTC = time.Date(2024, 3, 5, 10, 20, 30, 123456789, time.UTC)
	tCET = time.Date(2024, 3, 6, 11, 0, 0, 500000000, time.FixedZone("CET", 3600))
	tNeg = time.Date(2023, 12, 31, 23, 59, 59, 0, time.FixedZone("", -(5*3600+30*60)))
)

// vendorAttrs has every JSON value kind, nested, plus characters that
// encoding/json escapes.
func vendorAttrs() itsm.VendorAttributes {
	return itsm.VendorAttributes{
		"status":          "In Progress",
		"status_category": "indeterminate",
		"story_points":    5.5,
		"rank":            3,
		"flagged":         true,
		"resolution":      nil,
		"customfield_10020": []any{"sprint <1> & co", 42, false, nil,
			map[string]any{"nested": []any{1.25, map[string]any{"deep": "yes"}}}},
		"description_adf": map[string]any{"type": "doc", "version": 1, "content": []any{
			map[string]any{"type": "paragraph", "content": []any{
				map[string]any{"type": "text", "text": "héllo \"world\"\n"},
			}},
		}},
		"empty_object": map[string]any{},
		"empty_list":   []any{},
	}
}

type contractCase struct {
	name string
	kind itsm.Kind
	obj  any
}

func contractCases() []contractCase {
	return []contractCase{
		{"full", itsm.KindTicket, itsm.Ticket{
			ID: "9b2e6f0e-1c1d-5d8e-8f3a-0c9c3b1e2d4f", Name: "Printer on fire", Description: "It <really> is & smoking",
			Type: "Bug", Active: true, Status: itsm.StatusInProgress, Priority: itsm.PriorityHigh,
			ParentTicketID: ptr("p-1"), ProjectID: ptr("proj-1"), AssignedUserID: ptr("u-1"), CreatedByUserID: ptr("u-2"),
			TicketCreatedAt: ptr(tNeg), DueDate: ptr(tCET), ClosedAt: ptr(tUTC), StatusUpdatedAt: ptr(tUTC.Add(time.Hour)),
			Tags: []string{"ops", "hardware"}, URL: "https://acme.atlassian.net/browse/OPS-7", Identifier: "OPS-7",
			VendorAttributes: vendorAttrs(), CreatedAt: tUTC, UpdatedAt: tCET,
		}},
		{"nil_pointers", itsm.KindTicket, itsm.Ticket{
			ID: "t-2", Name: "n", Status: itsm.StatusDeleted, Priority: itsm.PriorityUnknown,
			CreatedAt: tUTC, UpdatedAt: tUTC,
		}},
		{"empty_collections", itsm.KindTicket, itsm.Ticket{
			ID: "t-3", Tags: []string{}, VendorAttributes: itsm.VendorAttributes{}, CreatedAt: tUTC, UpdatedAt: tUTC,
		}},
		{"zero", itsm.KindTicket, itsm.Ticket{}},

		{"full", itsm.KindProject, itsm.Project{
			ID: "proj-1", Name: "Operations", Description: "Ops desk", Category: ptr("IT"), Type: "service_desk",
			Status: itsm.ObjectInactive, StatusUpdatedAt: ptr(tCET), Active: true,
			Identifier: "OPS", URL: "https://acme.atlassian.net/browse/OPS", LeadUserID: ptr("u-1"),
			VendorAttributes: vendorAttrs(), CreatedAt: tUTC, UpdatedAt: tCET,
		}},
		{"nil_pointers", itsm.KindProject, itsm.Project{ID: "proj-2", CreatedAt: tUTC, UpdatedAt: tUTC}},

		{"full", itsm.KindComment, itsm.Comment{
			ID: "c-1", TicketID: "t-1", Body: "Tried turning it off and on", Active: true,
			Status: itsm.ObjectActive, StatusUpdatedAt: ptr(tNeg), AuthorID: ptr("u-1"), UpdatedByUserID: ptr("u-2"), CommentCreatedAt: ptr(tNeg), CommentUpdatedAt: ptr(tCET),
			URL: "https://acme.atlassian.net/browse/OPS-7?focusedCommentId=10001", VendorAttributes: vendorAttrs(),
			CreatedAt: tUTC, UpdatedAt: tCET,
		}},
		{"nil_pointers", itsm.KindComment, itsm.Comment{ID: "c-2", TicketID: "t-1", CreatedAt: tUTC, UpdatedAt: tUTC}},

		{"full", itsm.KindAttachment, itsm.Attachment{
			ID: "a-1", TicketID: "t-1", Name: "smoke.png", MimeType: "image/png",
			Size:   1<<53 + 1, // beyond a double's exact range: must survive as int64
			Active: true, URL: "https://acme.atlassian.net/rest/api/3/attachment/content/10000",
			UploadedByUserID: ptr("u-1"), Status: itsm.ObjectDeleted, StatusUpdatedAt: ptr(tUTC),
			AttachmentCreatedAt: ptr(tCET), VendorAttributes: vendorAttrs(),
			CreatedAt: tUTC, UpdatedAt: tCET,
		}},
		{"nil_pointers", itsm.KindAttachment, itsm.Attachment{ID: "a-2", Size: 0, CreatedAt: tUTC, UpdatedAt: tUTC}},

		{"full", itsm.KindUser, itsm.User{
			ID: "u-1", Name: "Ada Lovelace", Email: ptr("ada@example.com"), Status: itsm.ObjectActive, Active: true,
			StatusUpdatedAt:  ptr(tCET),
			VendorAttributes: vendorAttrs(), CreatedAt: tUTC, UpdatedAt: tCET,
		}},
		{"nil_pointers", itsm.KindUser, itsm.User{ID: "u-2", Name: "Hidden", Status: itsm.ObjectInactive, CreatedAt: tUTC, UpdatedAt: tUTC}},

		{"full", itsm.KindGroup, itsm.Group{
			ID: "g-1", Name: "ops-team", Description: "Operations", Status: itsm.ObjectActive, StatusUpdatedAt: ptr(tUTC),
			Active: true, MemberUserIDs: []string{"u-1", "u-2"},
			VendorAttributes: vendorAttrs(), CreatedAt: tUTC, UpdatedAt: tCET,
		}},
		{"nil_pointers", itsm.KindGroup, itsm.Group{ID: "g-2", Name: "empty", CreatedAt: tUTC, UpdatedAt: tUTC}},
	}
}

// TestPlatformEventJSONParsesAsObjectEvent publishes each object the way the
// platform does (encoding/json into itsm.Event) and requires protojson to
// parse it strictly into ObjectEvent, then checks that every field survives:
// the proto re-encoded with UseProtoNames has the same keys and equivalent
// values as the platform's JSON.
func TestPlatformEventJSONParsesAsObjectEvent(t *testing.T) {
	for _, c := range contractCases() {
		t.Run(string(c.kind)+"/"+c.name, func(t *testing.T) {
			body, err := json.Marshal(c.obj)
			require.NoError(t, err)
			ev := itsm.Event{
				Object: c.kind, Change: itsm.ChangeUpdated, ChangedFields: []string{"name", "updated_at"},
				Version: "1709634030123", OrganizationID: "org-1", ConnectionID: "conn-1",
			}
			if c.name != "full" {
				ev.Change, ev.ChangedFields = itsm.ChangeCreated, nil
			}
			require.NoError(t, ev.SetData(body))
			wire, err := json.Marshal(ev)
			require.NoError(t, err)

			var pe itsmv1.ObjectEvent
			require.NoError(t, protojson.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(wire, &pe),
				"the platform's event JSON must parse as itsm.v1.ObjectEvent:\n%s", wire)

			m := pe.ProtoReflect()
			set := m.WhichOneof(m.Descriptor().Oneofs().ByName("data"))
			require.NotNil(t, set, "no data field set")
			assert.Equal(t, string(c.kind), string(set.Name()), "data field set must be named by object")

			back, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(&pe)
			require.NoError(t, err)
			compareMessage(t, "event", m.Descriptor(), decodeJSON(t, wire), decodeJSON(t, back))
		})
	}
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	require.NoError(t, d.Decode(&v))
	return v
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// compareMessage checks that goV (the platform's JSON) and protoV (protojson
// of the parsed proto, with every field emitted) have the same keys and
// equivalent values, field by field along the descriptor.
func compareMessage(t *testing.T, path string, md protoreflect.MessageDescriptor, goV, protoV any) {
	t.Helper()
	g, ok := goV.(map[string]any)
	require.True(t, ok, "%s: platform JSON is %T, want object", path, goV)
	p, ok := protoV.(map[string]any)
	require.True(t, ok, "%s: proto JSON is %T, want object", path, protoV)
	// protojson leaves out unset proto3 optional scalars even with
	// EmitUnpopulated, where the platform writes null: same meaning.
	var want []string
	for k, v := range g {
		fd := md.Fields().ByName(protoreflect.Name(k))
		if v == nil && fd != nil && fd.HasPresence() && fd.Kind() != protoreflect.MessageKind {
			continue
		}
		want = append(want, k)
	}
	slices.Sort(want)
	require.Equal(t, want, sortedKeys(p), "%s: keys differ between platform JSON and proto", path)
	for i := 0; i < md.Fields().Len(); i++ {
		fd := md.Fields().Get(i)
		name := string(fd.Name())
		if _, ok := g[name]; !ok {
			continue // an unset member of the data oneof: absent on both sides (keys compared above)
		}
		compareField(t, path+"."+name, fd, g[name], p[name])
	}
}

func compareField(t *testing.T, path string, fd protoreflect.FieldDescriptor, g, p any) {
	t.Helper()
	if fd.IsList() {
		// The platform writes a nil slice as null; proto has no null list.
		gl, ok := g.([]any)
		require.True(t, ok || g == nil, "%s: platform JSON is %T, want list or null", path, g)
		pl, ok := p.([]any)
		require.True(t, ok, "%s: proto JSON is %T, want list", path, p)
		require.Len(t, pl, len(gl), "%s: list length", path)
		for i := range gl {
			compareScalar(t, path+"["+strconv.Itoa(i)+"]", fd, gl[i], pl[i])
		}
		return
	}
	if fd.Kind() != protoreflect.MessageKind {
		compareScalar(t, path, fd, g, p)
		return
	}
	if g == nil {
		assert.Nil(t, p, "%s: platform wrote null", path)
		return
	}
	switch fd.Message().FullName() {
	case "google.protobuf.Timestamp":
		gt, err := time.Parse(time.RFC3339Nano, g.(string))
		require.NoError(t, err, path)
		ps, ok := p.(string)
		require.True(t, ok, "%s: proto JSON is %v, want timestamp string", path, p)
		pt, err := time.Parse(time.RFC3339Nano, ps)
		require.NoError(t, err, path)
		assert.True(t, gt.Equal(pt), "%s: platform %s, proto %s", path, g, ps)
	case "google.protobuf.Struct":
		assert.Equal(t, numbersToFloat(g), numbersToFloat(p), "%s: Struct differs", path)
	default:
		compareMessage(t, path, fd.Message(), g, p)
	}
}

func compareScalar(t *testing.T, path string, fd protoreflect.FieldDescriptor, g, p any) {
	t.Helper()
	switch fd.Kind() {
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		// The platform writes a JSON number; protojson writes the decimal
		// digits as a string. Both carry the exact value.
		gn, ok := g.(json.Number)
		require.True(t, ok, "%s: platform JSON is %T, want number", path, g)
		assert.Equal(t, gn.String(), p, "%s", path)
	default:
		assert.Equal(t, g, p, "%s", path)
	}
}

// numbersToFloat maps json.Number to float64: google.protobuf.Struct holds
// numbers as doubles, so compare them as such.
func numbersToFloat(v any) any {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return v
		}
		return f
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = numbersToFloat(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = numbersToFloat(e)
		}
		return out
	}
	return v
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	rawType      = reflect.TypeFor[json.RawMessage]()
	vendorAttrsT = reflect.TypeFor[itsm.VendorAttributes]()
)

// TestProtoFieldsMatchGoJSONTags: each proto message has exactly the fields
// of its Go type's JSON tags, with compatible types, so neither side can gain,
// lose or retype a field alone.
func TestProtoFieldsMatchGoJSONTags(t *testing.T) {
	pairs := []struct {
		goType reflect.Type
		md     protoreflect.MessageDescriptor
	}{
		{reflect.TypeFor[itsm.Ticket](), (&itsmv1.Ticket{}).ProtoReflect().Descriptor()},
		{reflect.TypeFor[itsm.Project](), (&itsmv1.Project{}).ProtoReflect().Descriptor()},
		{reflect.TypeFor[itsm.Comment](), (&itsmv1.Comment{}).ProtoReflect().Descriptor()},
		{reflect.TypeFor[itsm.Attachment](), (&itsmv1.Attachment{}).ProtoReflect().Descriptor()},
		{reflect.TypeFor[itsm.User](), (&itsmv1.User{}).ProtoReflect().Descriptor()},
		{reflect.TypeFor[itsm.Group](), (&itsmv1.Group{}).ProtoReflect().Descriptor()},
		{reflect.TypeFor[itsm.Event](), (&itsmv1.ObjectEvent{}).ProtoReflect().Descriptor()},
	}
	for _, pair := range pairs {
		t.Run(string(pair.md.Name()), func(t *testing.T) {
			goFields := map[string]reflect.Type{}
			for f := range pair.goType.Fields() {
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if !f.IsExported() || name == "-" {
					continue
				}
				require.NotEmpty(t, name, "%s.%s has no json tag", pair.goType.Name(), f.Name)
				goFields[name] = f.Type
			}
			var goNames, protoNames []string
			for name := range goFields {
				goNames = append(goNames, name)
			}
			for i := 0; i < pair.md.Fields().Len(); i++ {
				protoNames = append(protoNames, string(pair.md.Fields().Get(i).Name()))
			}
			slices.Sort(goNames)
			slices.Sort(protoNames)
			require.Equal(t, goNames, protoNames, "JSON keys of %s vs fields of %s", pair.goType, pair.md.FullName())

			for name, gt := range goFields {
				fd := pair.md.Fields().ByName(protoreflect.Name(name))
				assert.NoError(t, compatible(gt, fd), "%s.%s", pair.md.Name(), name)
			}
		})
	}
}

func mismatch(gt reflect.Type, fd protoreflect.FieldDescriptor, want string) error {
	return fmt.Errorf("Go type %s needs %s, proto field is %s %s", gt, want, fd.Cardinality(), fd.Kind())
}

// compatible says whether the Go field type's encoding/json output fits the
// proto field and the proto field's nullability matches the Go type's.
func compatible(gt reflect.Type, fd protoreflect.FieldDescriptor) error {
	isMsg := func(name protoreflect.FullName) bool {
		return !fd.IsList() && !fd.IsMap() && fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == name
	}
	switch {
	case gt == timeType || (gt.Kind() == reflect.Pointer && gt.Elem() == timeType):
		if !isMsg("google.protobuf.Timestamp") {
			return mismatch(gt, fd, "google.protobuf.Timestamp")
		}
	case gt == vendorAttrsT:
		if !isMsg("google.protobuf.Struct") {
			return mismatch(gt, fd, "google.protobuf.Struct")
		}
	case gt == rawType:
		// An object of the event's data oneof.
		if fd.IsList() || fd.Kind() != protoreflect.MessageKind || fd.ContainingOneof() == nil ||
			fd.ContainingOneof().Name() != "data" {
			return mismatch(gt, fd, "a message in oneof data")
		}
	case gt.Kind() == reflect.Pointer && gt.Elem().Kind() == reflect.String:
		if fd.IsList() || fd.Kind() != protoreflect.StringKind || !fd.HasPresence() {
			return mismatch(gt, fd, "optional string")
		}
	case gt.Kind() == reflect.String:
		if fd.IsList() || fd.Kind() != protoreflect.StringKind || fd.HasPresence() {
			return mismatch(gt, fd, "string (not optional: the platform never writes null)")
		}
	case gt.Kind() == reflect.Bool:
		if fd.IsList() || fd.Kind() != protoreflect.BoolKind || fd.HasPresence() {
			return mismatch(gt, fd, "bool")
		}
	case gt.Kind() == reflect.Int64:
		if fd.IsList() || fd.Kind() != protoreflect.Int64Kind || fd.HasPresence() {
			return mismatch(gt, fd, "int64")
		}
	case gt.Kind() == reflect.Slice && gt.Elem().Kind() == reflect.String:
		if !fd.IsList() || fd.Kind() != protoreflect.StringKind {
			return mismatch(gt, fd, "repeated string")
		}
	default:
		return fmt.Errorf("Go type %s has no known proto mapping: extend compatible()", gt)
	}
	return nil
}

// TestObjectEventDataCoversKinds: the data oneof has one member per object
// kind, named after the kind, of the message of that kind.
func TestObjectEventDataCoversKinds(t *testing.T) {
	md := (&itsmv1.ObjectEvent{}).ProtoReflect().Descriptor()
	data := md.Oneofs().ByName("data")
	require.NotNil(t, data)
	require.Equal(t, len(itsm.Kinds), data.Fields().Len())
	for _, k := range itsm.Kinds {
		fd := data.Fields().ByName(protoreflect.Name(k))
		if assert.NotNil(t, fd, "oneof data has no member %q", k) {
			assert.Equal(t, strings.ToUpper(string(k[:1]))+string(k[1:]), string(fd.Message().Name()))
		}
	}
}

// TestProtoCommentsListEnumValues: the string fields that stand for Go enums
// document their allowed values in the .proto; keep those lists exact.
func TestProtoCommentsListEnumValues(t *testing.T) {
	upper := regexp.MustCompile(`\b[A-Z][A-Z_]+\b`)
	for _, c := range []struct {
		file, msg, field string
		values           []string
		exact            bool // every upper-case word in the comment must be a value
	}{
		{"objects.proto", "Ticket", "status", strs(itsm.Statuses), true},
		{"objects.proto", "Ticket", "priority", strs(itsm.Priorities), true},
		{"objects.proto", "User", "status", strs(itsm.ObjectStatuses), true},
		{"objects.proto", "Project", "status", strs(itsm.ObjectStatuses), true},
		{"objects.proto", "Comment", "status", strs(itsm.ObjectStatuses), true},
		{"objects.proto", "Attachment", "status", strs(itsm.ObjectStatuses), true},
		{"objects.proto", "Group", "status", strs(itsm.ObjectStatuses), true},
		{"events.proto", "ObjectEvent", "object", strs(itsm.Kinds), false},
		{"events.proto", "ObjectEvent", "change", strs([]itsm.Change{itsm.ChangeCreated, itsm.ChangeUpdated, itsm.ChangeDeleted}), false},
	} {
		comment := fieldComment(t, "../../proto/itsm/v1/"+c.file, c.msg, c.field)
		for _, v := range c.values {
			assert.Regexp(t, `\b`+regexp.QuoteMeta(v)+`\b`, comment, "%s.%s: comment does not list %s", c.msg, c.field, v)
		}
		if c.exact {
			for _, w := range upper.FindAllString(comment, -1) {
				assert.Contains(t, c.values, w, "%s.%s: comment lists %s, which is not a Go value", c.msg, c.field, w)
			}
		}
	}
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// fieldComment returns the // comment lines right above field in message msg
// of a .proto file.
func fieldComment(t *testing.T, file, msg, field string) string {
	t.Helper()
	src, err := os.ReadFile(file)
	require.NoError(t, err)
	decl := regexp.MustCompile(`^(optional |repeated )?[\w.]+ ` + regexp.QuoteMeta(field) + ` = \d+;`)
	in := false
	var comment []string
	for line := range strings.Lines(string(src)) {
		s := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(s, "message "):
			in = strings.HasPrefix(s, "message "+msg+" ")
			comment = nil
		case !in:
		case strings.HasPrefix(s, "//"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(s, "//")))
		case decl.MatchString(s):
			return strings.Join(comment, " ")
		default:
			comment = nil
		}
	}
	t.Fatalf("%s: no field %s in message %s", file, field, msg)
	return ""
}
