package app

import (
	"context"
	"fmt"

	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/mongostore"
)

func openMongo(ctx context.Context, uri string) (store.Store, error) {
	s, err := mongostore.Open(ctx, uri, "")
	if err != nil {
		// mongostore redacts credentials from its errors.
		return nil, fmt.Errorf("ITSM_STORE: %w", err)
	}
	return s, nil
}
