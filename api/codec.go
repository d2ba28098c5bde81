package api

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonCodec replaces connect-go's default JSON codec (registered under the
// same names) for the HTTP API:
//
//   - Marshal emits unpopulated fields, so a count of 0 reads "count":"0"
//     instead of an empty object, and uses proto names (snake_case), matching
//     the request bodies of the article (see [API-4] in docs/contracts.md).
//   - Unmarshal refuses unknown fields (connect-go discards them): a misspelt
//     "idempotency_tokn" would otherwise turn a retry-safe write into one the
//     server assigns a token to, without a word.
//   - An empty body decodes as the empty message, as an empty protobuf body
//     does, so `curl -X POST …/ListNamespaces` needs no "{}".
type jsonCodec struct{ name string }

var (
	marshalJSON   = protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true}
	unmarshalJSON = protojson.UnmarshalOptions{DiscardUnknown: false}
)

// jsonCodecNames are the names connect-go registers its JSON codec under; a
// request's Content-Type picks one, so both must be replaced.
var jsonCodecNames = []string{"json", "json; charset=utf-8"}

func (c jsonCodec) Name() string { return c.name }

func (jsonCodec) Marshal(m any) ([]byte, error) {
	pm, err := protoMessage(m)
	if err != nil {
		return nil, err
	}
	return marshalJSON.Marshal(pm)
}

// MarshalAppend lets connect-go reuse its pooled buffers.
func (jsonCodec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	pm, err := protoMessage(m)
	if err != nil {
		return nil, err
	}
	return marshalJSON.MarshalAppend(dst, pm)
}

// MarshalStable is used by connect-go for GET request query strings; protojson
// is stable up to whitespace, which Compact removes.
func (c jsonCodec) MarshalStable(m any) ([]byte, error) {
	b, err := c.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// IsBinary reports that the encoding is text.
func (jsonCodec) IsBinary() bool { return false }

func (jsonCodec) Unmarshal(b []byte, m any) error {
	pm, err := protoMessage(m)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		proto.Reset(pm)
		return nil
	}
	return unmarshalJSON.Unmarshal(b, pm)
}

func protoMessage(m any) (proto.Message, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("json codec: %T is not a protobuf message", m)
	}
	return pm, nil
}
