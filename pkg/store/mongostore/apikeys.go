package mongostore

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/itsmhub/itsm/pkg/store"
)

// apiKeyRecord is an API key as stored in the api_keys collection. Times are
// Unix nanoseconds, as everywhere in this store. RevokedAt is absent while
// the key is live: "revoked_at does not exist" is what LookupAPIKey and
// RevokeAPIKey match on, as SQLite matches revoked_at IS NULL.
type apiKeyRecord struct {
	ID             string `bson:"_id"`
	OrganizationID string `bson:"organization_id"`
	Name           string `bson:"name"`
	Hash           []byte `bson:"hash"`
	CreatedAt      int64  `bson:"created_at"`
	RevokedAt      *int64 `bson:"revoked_at,omitempty"`
}

func (r *apiKeyRecord) apiKey() *store.APIKey {
	k := &store.APIKey{
		ID: r.ID, OrganizationID: r.OrganizationID, Name: r.Name, Hash: r.Hash,
		CreatedAt: nanosTime(r.CreatedAt),
	}
	if r.RevokedAt != nil {
		t := nanosTime(*r.RevokedAt)
		k.RevokedAt = &t
	}
	return k
}

// hashValue is a hash as BSON binary. A nil []byte would be encoded as null,
// and {hash: null} also matches documents without a hash; binary (empty when
// the hash is) only ever equals the same bytes.
func hashValue(hash []byte) bson.Binary {
	return bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: hash}
}

// apiKeyInsert is a new, live key: like the SQLite store, creating ignores
// RevokedAt. The duplicate-key error on _id or on the unique hash index is
// how CreateAPIKey detects a conflict.
func apiKeyInsert(k *store.APIKey) bson.D {
	return bson.D{
		{Key: "_id", Value: k.ID},
		{Key: "organization_id", Value: k.OrganizationID},
		{Key: "name", Value: k.Name},
		{Key: "hash", Value: hashValue(k.Hash)},
		{Key: "created_at", Value: k.CreatedAt.UnixNano()},
	}
}

// notRevoked matches live keys.
func notRevoked() bson.E {
	return bson.E{Key: "revoked_at", Value: bson.D{{Key: "$exists", Value: false}}}
}

// apiKeyLookupFilter finds a live key by hash in any organization: the key
// is what tells the organization. A revoked key reads as missing.
func apiKeyLookupFilter(hash []byte) bson.D {
	return bson.D{{Key: "hash", Value: hashValue(hash)}, notRevoked()}
}

func apiKeyListFilter(orgID string) bson.D {
	return bson.D{{Key: "organization_id", Value: orgID}}
}

// apiKeyListSort is the SQLite store's order (created_at, id); it follows the
// api_keys_org index.
func apiKeyListSort() bson.D {
	return bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}
}

// apiKeyRevokeFilter only matches a live key of the caller's organization, so
// another organization's key and a key already revoked both match nothing,
// which RevokeAPIKey reports as not found; the first revocation time stays.
func apiKeyRevokeFilter(orgID, id string) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "organization_id", Value: orgID}, notRevoked()}
}

func apiKeyRevokeUpdate(at time.Time) bson.D {
	return bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: at.UnixNano()}}}}
}
