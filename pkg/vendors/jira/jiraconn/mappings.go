package jiraconn

import (
	"context"
	"net/http"
	"time"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

// Catalog reads the site's statuses (with their categories) and its
// priorities in the site's order.
func (j *Connector) Catalog(ctx context.Context, c *store.Connection, hc *http.Client, now time.Time) (*store.Catalog, error) {
	client, err := j.client(c, hc)
	if err != nil {
		return nil, err
	}
	return client.Catalog(ctx, now)
}

// MapCatalog maps each of cat's statuses and priorities as the normalizer
// does (jira.MappingOf), with cat's priority order rather than the one
// stored on the connection.
func (j *Connector) MapCatalog(c *store.Connection, cat *store.Catalog) ([]connector.MappedStatus, []connector.MappedPriority) {
	mp := jira.MappingOf(c)
	mp.PriorityScheme = cat.Priorities
	statuses := make([]connector.MappedStatus, 0, len(cat.Statuses))
	for _, s := range cat.Statuses {
		st, by := mp.MapStatus(s.Name, s.Category)
		statuses = append(statuses, connector.MappedStatus{Name: s.Name, Category: s.Category, Status: st, MappedBy: string(by)})
	}
	priorities := make([]connector.MappedPriority, 0, len(cat.Priorities))
	for _, name := range cat.Priorities {
		p, by := mp.MapPriority(name)
		priorities = append(priorities, connector.MappedPriority{Name: name, Priority: p, MappedBy: string(by)})
	}
	return statuses, priorities
}
