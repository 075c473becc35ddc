package platform

import (
	"context"
	"errors"

	"github.com/itsmhub/itsm/pkg/store"
)

func openMongo(ctx context.Context, uri string) (store.Store, error) {
	return nil, errors.New("ITSM_STORE: MongoDB backend not wired yet")
}
