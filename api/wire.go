package api

import (
	"context"
	"errors"
	"slices"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/abacus-dev/abacus"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
)

// The gRPC server reads AddCounts requests, the bulk of a busy node's
// traffic, straight from the wire into the service's requests (addsWire),
// instead of into a message, a token and a timestamp and three strings per
// add that are converted and dropped at once: the generated decoding took a
// tenth of the node's CPU in batch ingest, and most of its allocations.
// The client writes its adds the same way (client/wire.go).
//
// The decoding is the generated code's, field by field: a field of a known
// number with another wire type is skipped as an unknown field, strings
// must be valid UTF-8, a message field given twice is merged, and malformed
// input is an error; FuzzAddsWire checks it against proto.Unmarshal.

// wireAdd is one AddCountRequest as the wire gives it, with the presence of
// the token and of its time, which the conversion to abacus.AddRequest
// needs (see tokenFromProto).
type wireAdd struct {
	ns, counter, token string
	delta              int64
	hasToken, hasTime  bool
	sec                int64
	nanos              int32
}

// addsWire is an AddCountsRequest decoded by serverCodec. Its strings are
// cut from one copy of the request's bytes. It is a proto.Message too
// (ProtoReflect), as interceptors and stats handlers expect of a request.
type addsWire struct {
	adds []wireAdd
	raw  string                     // the request's bytes, if it has adds
	msg  *abacusv1.AddCountsRequest // made by message, once
}

var errWire = errors.New("cannot parse invalid wire-format data")

// wireBuf is a request's bytes, and one string copy of them which every
// string field is cut from.
type wireBuf struct {
	b []byte
	s string
}

// decode reads an AddCountsRequest.
func (w *addsWire) decode(b []byte) error {
	buf := wireBuf{b: b}
	n := 0
	if err := buf.fields(0, len(b), func(num protowire.Number, typ protowire.Type, _ uint64, _, _ int) (bool, error) {
		if num == 1 && typ == protowire.BytesType {
			n++
		}
		return false, nil
	}); err != nil || n == 0 {
		return err
	}
	buf.s = string(b)
	w.raw = buf.s
	w.adds = make([]wireAdd, 0, n)
	return buf.fields(0, len(b), func(num protowire.Number, typ protowire.Type, _ uint64, lo, hi int) (bool, error) {
		if num != 1 || typ != protowire.BytesType {
			return false, nil
		}
		var a wireAdd
		err := a.decode(&buf, lo, hi)
		w.adds = append(w.adds, a)
		return true, err
	})
}

// fields calls fn with each field of the message in b[lo:hi]: its number,
// its wire type, its value if a varint, and the bounds of its value (after
// the length of a BytesType). A field fn does not take (fn returns false)
// is skipped, as the generated code skips an unknown field or one of a
// known number with another wire type.
func (buf *wireBuf) fields(lo, hi int, fn func(num protowire.Number, typ protowire.Type, v uint64, vlo, vhi int) (bool, error)) error {
	b := buf.b[:hi]
	for off := lo; off < hi; {
		tag, l := protowire.ConsumeVarint(b[off:])
		if l < 0 {
			return errWire
		}
		off += l
		num, typ := protowire.DecodeTag(tag)
		if tag>>3 < uint64(protowire.MinValidNumber) || tag>>3 > uint64(protowire.MaxValidNumber) || typ == protowire.EndGroupType {
			return errWire
		}
		var v uint64
		vlo, vhi := off, off
		switch typ {
		case protowire.VarintType:
			if v, l = protowire.ConsumeVarint(b[off:]); l < 0 {
				return errWire
			}
			vhi = off + l
		case protowire.BytesType:
			var bs []byte
			if bs, l = protowire.ConsumeBytes(b[off:]); l < 0 {
				return errWire
			}
			vlo, vhi = off+l-len(bs), off+l
		}
		took, err := fn(num, typ, v, vlo, vhi)
		if err != nil {
			return err
		}
		if took {
			off = vhi
			continue
		}
		if l = protowire.ConsumeFieldValue(num, typ, b[off:]); l < 0 {
			return errWire
		}
		off += l
	}
	return nil
}

// text returns the string field at s[lo:hi], refused unless valid UTF-8.
func (buf *wireBuf) text(lo, hi int) (string, error) {
	v := buf.s[lo:hi]
	if !utf8.ValidString(v) {
		return "", errors.New("string field contains invalid UTF-8")
	}
	return v, nil
}

// decode reads an AddCountRequest from buf's [lo, hi), merging into a.
func (a *wireAdd) decode(buf *wireBuf, lo, hi int) error {
	return buf.fields(lo, hi, func(num protowire.Number, typ protowire.Type, v uint64, vlo, vhi int) (bool, error) {
		var err error
		switch {
		case num == 1 && typ == protowire.BytesType:
			a.ns, err = buf.text(vlo, vhi)
		case num == 2 && typ == protowire.BytesType:
			a.counter, err = buf.text(vlo, vhi)
		case num == 3 && typ == protowire.VarintType:
			a.delta = int64(v)
		case num == 4 && typ == protowire.BytesType:
			a.hasToken = true
			err = a.decodeToken(buf, vlo, vhi)
		default:
			return false, nil
		}
		return true, err
	})
}

// decodeToken reads an IdempotencyToken from buf's [lo, hi), merging into
// a's.
func (a *wireAdd) decodeToken(buf *wireBuf, lo, hi int) error {
	return buf.fields(lo, hi, func(num protowire.Number, typ protowire.Type, v uint64, vlo, vhi int) (bool, error) {
		var err error
		switch {
		case num == 1 && typ == protowire.BytesType:
			a.token, err = buf.text(vlo, vhi)
		case num == 2 && typ == protowire.BytesType:
			a.hasTime = true
			err = buf.fields(vlo, vhi, func(num protowire.Number, typ protowire.Type, v uint64, _, _ int) (bool, error) {
				switch {
				case num == 1 && typ == protowire.VarintType:
					a.sec = int64(v)
				case num == 2 && typ == protowire.VarintType:
					a.nanos = int32(v)
				default:
					return false, nil
				}
				return true, nil
			})
		default:
			return false, nil
		}
		return true, err
	})
}

// request returns the add as the service takes it, or an error if
// addFromProto refuses its message.
func (a *wireAdd) request() (abacus.AddRequest, error) {
	r := abacus.AddRequest{Namespace: a.ns, Counter: a.counter, Delta: a.delta}
	if !a.hasToken {
		return r, nil
	}
	tok := abacusv1.IdempotencyToken{Token: a.token}
	var ts timestamppb.Timestamp
	if a.hasTime {
		ts.Seconds, ts.Nanos = a.sec, a.nanos
		tok.GenerationTime = &ts
	}
	var err error
	r.Token, err = tokenFromProto("idempotency_token", &tok)
	return r, err
}

// requests converts the adds as addsFromProto converts their message.
func (w *addsWire) requests() ([]abacus.AddRequest, error) {
	if err := checkBatch("adds", len(w.adds)); err != nil {
		return nil, err
	}
	out := make([]abacus.AddRequest, len(w.adds))
	for i := range w.adds {
		var err error
		if out[i], err = w.adds[i].request(); err != nil {
			// The error is the one addsFromProto gives, word for word: a
			// bad time's message prints the whole Timestamp, with unknown
			// fields that addsWire does not keep. Rare enough to decode
			// again.
			var m abacusv1.AddCountsRequest
			if err := proto.Unmarshal([]byte(w.raw), &m); err != nil {
				return nil, err
			}
			return addsFromProto(&m)
		}
	}
	return out, nil
}

// message returns the request as a message.
func (w *addsWire) message() *abacusv1.AddCountsRequest {
	if w.msg != nil {
		return w.msg
	}
	m := &abacusv1.AddCountsRequest{Adds: make([]*abacusv1.AddCountRequest, len(w.adds))}
	for i, a := range w.adds {
		r := &abacusv1.AddCountRequest{Namespace: a.ns, CounterName: a.counter, Delta: a.delta}
		if a.hasToken {
			r.IdempotencyToken = &abacusv1.IdempotencyToken{Token: a.token}
			if a.hasTime {
				r.IdempotencyToken.GenerationTime = &timestamppb.Timestamp{Seconds: a.sec, Nanos: a.nanos}
			}
		}
		m.Adds[i] = r
	}
	w.msg = m
	return m
}

// ProtoReflect makes addsWire a proto.Message: that of the request.
func (w *addsWire) ProtoReflect() protoreflect.Message { return w.message().ProtoReflect() }

// protoCodec is grpc-go's own codec, which serverCodec defers to.
var protoCodec = encoding.GetCodecV2(grpcproto.Name)

// serverCodec is grpc-go's proto codec but for addsWire, which it decodes
// itself.
type serverCodec struct{}

func (serverCodec) Name() string { return grpcproto.Name }

func (serverCodec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }

func (serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	w, ok := v.(*addsWire)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	if len(data) == 1 {
		return w.decode(data[0].ReadOnlyData())
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return w.decode(buf.ReadOnlyData())
}

// counterServiceDesc is the generated CounterService, with AddCounts served
// from addsWire.
func counterServiceDesc() *grpc.ServiceDesc {
	d := abacusv1.CounterService_ServiceDesc
	d.Methods = slices.Clone(d.Methods)
	for i := range d.Methods {
		if d.Methods[i].MethodName == "AddCounts" {
			d.Methods[i].Handler = addCountsHandler
		}
	}
	return &d
}

// addCountsHandler is the generated AddCounts handler, for addsWire.
func addCountsHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(addsWire)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(grpcCounterServer)
	call := func(ctx context.Context, req any) (any, error) {
		return grpcCall(ctx, s.o, abacusv1connect.CounterServiceAddCountsProcedure, s.o.addCountsWire, req.(*addsWire))
	}
	if interceptor == nil {
		return call(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: abacusv1.CounterService_AddCounts_FullMethodName}
	return interceptor(ctx, in, info, call)
}
