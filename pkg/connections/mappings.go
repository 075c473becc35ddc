package connections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/store"
)

// MappingReport is every status and priority a connection's site defines,
// with the ITSM value each maps to and why, so that an admin can check (and
// fix with a PATCH of the mappings) before data flows.
type MappingReport struct {
	// Source is "vendor" when read from the site just now, "last_sync"
	// when the site could not be asked and the last full sync's catalog
	// answers instead.
	Source     string           `json:"source"`
	ReadAt     time.Time        `json:"read_at"`
	Statuses   []MappedStatus   `json:"statuses"`
	Priorities []MappedPriority `json:"priorities"`
}

// MappedStatus is one vendor status and its ITSM status.
type MappedStatus = connector.MappedStatus

// MappedPriority is one vendor priority (in the site's order, highest
// first) and its ITSM priority.
type MappedPriority = connector.MappedPriority

// Mappings reports how the connection maps its site's statuses and
// priorities with its current options.
func (m *Manager) Mappings(ctx context.Context, orgID, id string) (*MappingReport, error) {
	c, v, err := m.liveWithVendor(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	report := &MappingReport{Source: "vendor", ReadAt: m.cfg.Now().UTC()}
	cat, err := m.readCatalog(ctx, v, c)
	if err != nil {
		if c.Detail.Catalog == nil {
			if errors.Is(err, ErrNotActive) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: read the site's statuses and priorities: %w", ErrVendor, err)
		}
		cat, report.Source, report.ReadAt = c.Detail.Catalog, "last_sync", c.Detail.Catalog.ReadAt
	}
	report.Statuses, report.Priorities = v.Mappings.MapCatalog(c, cat)
	return report, nil
}

// readCatalog asks the site for its statuses and priorities.
func (m *Manager) readCatalog(ctx context.Context, v *Connector, c *store.Connection) (*store.Catalog, error) {
	if c.State != store.StateActive && c.State != store.StatePaused {
		return nil, fmt.Errorf("connection %s is %s: %w", c.ID, c.State, ErrNotActive)
	}
	hc, err := m.HTTPClient(ctx, c)
	if err != nil {
		return nil, err
	}
	return v.Mappings.Catalog(ctx, c, hc, m.cfg.Now().UTC())
}
