package snsync

import (
	"context"
	"slices"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
)

// choices reads the state choices of the connection's tables (sys_choice)
// into the connection's catalog, as servicenow.MappingOf reads them
// (Name = label, Category = "<table>:<code>"): states an instance adds
// are then mapped by their labels. States that still map to UNKNOWN are
// reported in the sync's progress. A change of labels bumps the mapping
// revision, so the normalizer re-maps stored tickets.
func (j *job) choices(ctx context.Context, _ phase, _ snclient.Cursor) error {
	if !j.full {
		return nil
	}
	tables := Tables(j.run.Conn())
	in, err := snclient.In("name", tables)
	if err != nil {
		return err
	}
	type key struct{ table, code string }
	labels := map[key]string{}
	var order []key
	err = j.c.Scan(ctx, snclient.Scan{Table: "sys_choice", Filter: in + "^element=state",
		Fields: []string{"name", "value", "label", "language", "inactive"}}, func(pg snclient.Page) error {
		return eachRow(pg.Rows, func(r servicenow.Row) {
			k := key{r.Str("name"), r.Str("value")}
			if k.table == "" || k.code == "" || r.Bool("inactive", false) {
				return
			}
			if lang := r.Str("language"); lang != "" && lang != "en" {
				if _, ok := labels[k]; ok {
					return
				}
			}
			if _, ok := labels[k]; !ok {
				order = append(order, k)
			}
			labels[k] = r.Str("label")
		})
	})
	if unreadable(err) {
		j.run.Log().Info("sys_choice is not readable; instance-specific states map by code only")
		return nil
	}
	if err != nil {
		return err
	}
	cat := &store.Catalog{ReadAt: j.run.Now().UTC()}
	for _, k := range order {
		cat.Statuses = append(cat.Statuses, store.CatalogStatus{Name: labels[k], Category: k.table + ":" + k.code})
	}
	err = j.run.UpdateConnection(ctx, func(c *store.Connection) error {
		if old := c.Detail.Catalog; old == nil || !slices.Equal(old.Statuses, cat.Statuses) {
			c.Detail.MappingRevision++
		}
		c.Detail.Catalog = cat
		return nil
	})
	if err != nil {
		return err
	}
	probe := *j.run.Conn()
	probe.Detail.Catalog = cat
	m := servicenow.MappingOf(&probe)
	var unmapped []string
	for _, k := range order {
		if s, _ := m.MapStatus(k.table, k.code, "", false); s == itsm.StatusUnknown {
			unmapped = append(unmapped, "status:"+k.table+":"+k.code+" "+labels[k])
		}
	}
	if len(unmapped) > 0 {
		j.run.Progress(connector.Progress{Unmapped: unmapped})
	}
	return nil
}

func eachRow(rows []jsontext.Value, fn func(servicenow.Row)) error {
	for _, row := range rows {
		r, err := servicenow.DecodeRow(row)
		if err != nil {
			return err
		}
		fn(r)
	}
	return nil
}
