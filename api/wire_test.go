package api

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/abacus-dev/abacus"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// wireSeeds are AddCountsRequests, marshalled, and hand-made wire forms the
// generated code reads in ways of its own: merged message fields, fields of
// a known number with another wire type, unknown fields and groups, bad
// UTF-8, field numbers out of range and truncated input.
func wireSeeds() [][]byte {
	ts := func(s int64, n int32) *timestamppb.Timestamp { return &timestamppb.Timestamp{Seconds: s, Nanos: n} }
	var seeds [][]byte
	for _, m := range []*abacusv1.AddCountsRequest{
		{},
		{Adds: []*abacusv1.AddCountRequest{{}}},
		{Adds: []*abacusv1.AddCountRequest{
			{Namespace: "views", CounterName: "c1", Delta: 1, IdempotencyToken: &abacusv1.IdempotencyToken{Token: "t1", GenerationTime: ts(1_733_000_000, 5)}},
			{Namespace: "views", CounterName: "c2", Delta: -7},
			{Namespace: "clicks", CounterName: "ü", Delta: math.MinInt64, IdempotencyToken: &abacusv1.IdempotencyToken{}},
			{CounterName: "c3", IdempotencyToken: &abacusv1.IdempotencyToken{Token: "t3"}},
			{Delta: 2, IdempotencyToken: &abacusv1.IdempotencyToken{Token: "t4", GenerationTime: ts(0, 0)}},
			{Delta: 3, IdempotencyToken: &abacusv1.IdempotencyToken{Token: "t5", GenerationTime: ts(-1, 1_000_000_000)}},
			{Delta: 4, IdempotencyToken: &abacusv1.IdempotencyToken{Token: "t6", GenerationTime: ts(math.MaxInt64, -1)}},
		}},
		// Each refused by the conversion, after a good add.
		{Adds: []*abacusv1.AddCountRequest{{Delta: 1}, {Delta: 1, IdempotencyToken: &abacusv1.IdempotencyToken{}}}},
		{Adds: []*abacusv1.AddCountRequest{{Delta: 1}, {Delta: 1, IdempotencyToken: &abacusv1.IdempotencyToken{GenerationTime: ts(1, 0)}}}},
		{Adds: []*abacusv1.AddCountRequest{{Delta: 1}, {IdempotencyToken: &abacusv1.IdempotencyToken{Token: "t", GenerationTime: ts(-1, 1_000_000_000)}}}},
		{Adds: []*abacusv1.AddCountRequest{{Delta: 1}, {IdempotencyToken: &abacusv1.IdempotencyToken{Token: "t", GenerationTime: ts(math.MaxInt64, 0)}}}},
		{Adds: make([]*abacusv1.AddCountRequest, abacus.MaxBatch+1)},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			panic(err)
		}
		seeds = append(seeds, b)
	}
	// The bounds of a valid time, on both sides.
	for _, t := range []*timestamppb.Timestamp{
		ts(-62135596800, 0), ts(-62135596801, 999_999_999), ts(253402300799, 999_999_999), ts(253402300800, 0),
		ts(5, 999_999_999), ts(5, 1_000_000_000), ts(5, -1), ts(math.MinInt64, 0),
	} {
		m := &abacusv1.AddCountsRequest{Adds: []*abacusv1.AddCountRequest{{Delta: 1, IdempotencyToken: &abacusv1.IdempotencyToken{Token: "t", GenerationTime: t}}}}
		b, err := proto.Marshal(m)
		if err != nil {
			panic(err)
		}
		seeds = append(seeds, b)
	}
	tag := protowire.AppendTag
	str := func(b []byte, num protowire.Number, s string) []byte {
		return protowire.AppendString(tag(b, num, protowire.BytesType), s)
	}
	msg := func(b []byte, num protowire.Number, m []byte) []byte {
		return protowire.AppendBytes(tag(b, num, protowire.BytesType), m)
	}
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(tag(b, num, protowire.VarintType), v)
	}
	when := varint(varint(nil, 1, 1_733_000_000), 2, 7)
	token := msg(str(nil, 1, "t"), 2, when)
	add := msg(varint(str(str(nil, 1, "ns"), 2, "c"), 3, 1), 4, token)
	group := protowire.AppendVarint(tag(nil, 9, protowire.StartGroupType), 0)
	group = tag(varint(group[:len(group)-1], 1, 5), 9, protowire.EndGroupType)
	for _, a := range [][]byte{
		add,
		msg(add, 4, msg(nil, 2, varint(nil, 2, 9))), // the token twice: merged
		msg(add, 4, str(nil, 1, "u")),               // the token's id replaced
		append(varint(nil, 1, 1), add...),           // namespace as a varint: unknown
		append(str(nil, 3, "x"), add...),            // delta as bytes: unknown
		append(add, varint(nil, 4, 1)...),           // token as a varint: unknown
		msg(add, 4, msg(nil, 2, str(nil, 1, "x"))),  // seconds as bytes: unknown
		msg(add, 4, varint(nil, 2, 3)),              // time as a varint: unknown
		append(add, group...),                       // an unknown group
		append(add, protowire.AppendFixed32(tag(nil, 15, protowire.Fixed32Type), 1)...),
		append(add, protowire.AppendFixed64(tag(nil, 16, protowire.Fixed64Type), 1)...),
		str(add, 2, "\xff"),                                                           // bad UTF-8
		msg(add, 4, str(nil, 1, "\xc3")),                                              // bad UTF-8 in the token
		str(add, 7, "\xff"),                                                           // bad UTF-8 in an unknown field: kept
		varint(add, 3, math.MaxUint64),                                                // delta −1 as ten bytes
		append(add, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), // varint overflow
		append(add, 0x18, 0x80, 0x00),                                                 // an over-long varint
		append(add, 0x00, 0x01),                                                       // field number 0
		append(add, 0xfc, 0xff, 0xff, 0xff, 0x0f, 0x00),                               // field number 2^29 − 1 (the largest), varint
		append(add, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00),                               // field number 2^29: out of range
		append(add, tag(nil, 5, protowire.EndGroupType)...),                           // a stray end group
		append(add, tag(nil, 5, protowire.Type(6))...),                                // a reserved wire type
		add[:len(add)-1],                                                              // truncated
	} {
		seeds = append(seeds, msg(nil, 1, a), append(msg(nil, 1, a), msg(nil, 1, add)...), a)
	}
	return append(seeds,
		msg(nil, 2, add),                   // adds under another number: unknown
		append(msg(nil, 1, add), 0x0a),     // a length missing
		append(msg(nil, 1, add), 0x0a, 9),  // a length past the end
		varint(msg(nil, 1, add), 1, 1),     // adds as a varint: unknown
		msg(msg(nil, 1, nil), 1, []byte{}), // two empty adds
	)
}

// FuzzAddsWire checks addsWire against the generated code: the same
// inputs decode, to the same requests or the same conversion error, and
// the same inputs fail.
func FuzzAddsWire(f *testing.F) {
	fuzzWire(f, func(b []byte) (wireRequest[[]abacus.AddRequest], error) {
		w := new(addsWire)
		return w, w.decode(b)
	}, addsFromProto)
}

// TestAddsWireSeeds makes sure the seeds cover what they claim: requests
// that decode, with and without conversion errors, and inputs that fail.
func TestAddsWireSeeds(t *testing.T) {
	var ok, bad, refused int
	for _, b := range wireSeeds() {
		var w addsWire
		if err := w.decode(b); err != nil {
			bad++
			continue
		}
		if _, err := w.requests(); err != nil {
			refused++
			continue
		}
		ok++
	}
	if ok < 10 || bad < 10 || refused < 5 {
		t.Errorf("seeds: %d decode and convert, %d decode but are refused, %d fail to decode; want each well represented", ok, refused, bad)
	}
}

// FuzzAddWire checks addWire, the unary AddCount's request, as
// FuzzAddsWire does addsWire.
func FuzzAddWire(f *testing.F) {
	fuzzWire(f, func(b []byte) (wireRequest[abacus.AddRequest], error) {
		w := new(addWire)
		return w, w.decode(b)
	}, addFromProto)
}

// wireRequest is a request serverCodec decodes (addsWire, addWire): its
// conversion to the service's request R, and its message.
type wireRequest[R any] interface {
	request() (R, error)
	ProtoReflect() protoreflect.Message
}

// request is addsWire's requests, under wireRequest's name.
func (w *addsWire) request() ([]abacus.AddRequest, error) { return w.requests() }

// fuzzWire checks a wire request's decoding against proto.Unmarshal into
// M, and its conversion against convert's of that message: the same
// inputs decode, to the same requests or the same error (code and
// message), and the same inputs fail; its message is the request without
// unknown fields.
func fuzzWire[M any, PM interface {
	*M
	proto.Message
}, R any](f *testing.F, decode func([]byte) (wireRequest[R], error), convert func(PM) (R, error)) {
	for _, s := range wireSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := PM(new(M))
		protoErr := proto.Unmarshal(b, m)
		w, wireErr := decode(b)
		if (protoErr == nil) != (wireErr == nil) {
			t.Fatalf("%x: proto.Unmarshal: %v, wire: %v", b, protoErr, wireErr)
		}
		if protoErr != nil {
			return
		}
		want, wantErr := convert(m)
		got, gotErr := w.request()
		if (wantErr == nil) != (gotErr == nil) || (wantErr != nil &&
			(abacus.ErrorCode(wantErr) != abacus.ErrorCode(gotErr) || wantErr.Error() != gotErr.Error())) {
			t.Fatalf("%x: generated: %v, wire: %v", b, wantErr, gotErr)
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%x: generated = %+v, wire = %+v", b, want, got)
		}
		known := PM(new(M))
		if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, known); err != nil {
			t.Fatal(err)
		}
		if msg := w.ProtoReflect().Interface(); !proto.Equal(msg, known) {
			t.Fatalf("%x: message = %v, want %v", b, msg, known)
		}
	})
}

// TestAddsResult writes AddCounts responses from tokens of every shape and
// reads them back as the generated code reads addCountsResponse's.
func TestAddsResult(t *testing.T) {
	at := func(s int64, n int) abacus.Token { return abacus.Token{ID: "t", Time: time.Unix(s, int64(n))} }
	for _, toks := range [][]abacus.Token{
		nil,
		{{}},
		{{ID: "0b0e9a54-8f7c-4d1e-9a43-3c1d2f6e5a7b", Time: time.Date(2026, 12, 7, 22, 0, 0, 123456789, time.UTC)}},
		{{ID: "only an id"}, {Time: time.Unix(5, 0)}, {}, at(0, 0), at(0, 1), at(1, 0), at(-1, 999_999_999)},
		{at(math.MaxInt32, 5), at(-62135596800, 0), {ID: strings.Repeat("ü", 200), Time: time.Unix(1, 2).In(time.FixedZone("x", 3600))}},
	} {
		r := &addsResult{toks: toks}
		b := r.appendTo(nil)
		if len(b) != r.size() {
			t.Errorf("%v: size() = %d, wrote %d bytes", toks, r.size(), len(b))
		}
		var got abacusv1.AddCountsResponse
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatalf("%v: %v", toks, err)
		}
		if want := addCountsResponse(toks); !proto.Equal(&got, want) {
			t.Errorf("%v: wrote %v, want %v", toks, &got, want)
		}
		if want, err := proto.Marshal(addCountsResponse(toks)); err != nil || !bytes.Equal(b, want) {
			t.Errorf("%v: wrote %x, the generated code writes %x (%v)", toks, b, want, err)
		}
	}
	// Invalid UTF-8 is refused, as the generated code refuses it.
	if _, err := (serverCodec{}).Marshal(&addsResult{toks: []abacus.Token{{ID: "\xff"}}}); err == nil {
		t.Error("a token that is not UTF-8 was marshalled")
	}
}
