package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"

	"github.com/abacus-dev/abacus/api"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
)

// fuzzBody feeds body to procedure as a Connect JSON request and checks that
// the handler answers 200 or a 4xx Connect error; a panic fails the fuzzer.
func fuzzBody(f *testing.F, procedure string, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	h := api.NewHTTPHandler(newFake(), api.HTTPOptions{})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, procedure, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("200 with invalid JSON %q", rec.Body)
			}
			return
		}
		var e struct{ Code, Message string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatalf("%d with a body that is no Connect error: %q", rec.Code, rec.Body)
		}
		var c connect.Code
		if rec.Code < 400 || rec.Code > 499 || c.UnmarshalText([]byte(e.Code)) != nil {
			t.Fatalf("%d %q for body %q, want 200 or a 4xx Connect error", rec.Code, rec.Body, body)
		}
	})
}

func FuzzDecodeAddCount(f *testing.F) {
	fuzzBody(f, abacusv1connect.CounterServiceAddCountProcedure,
		`{"namespace":"my_dataset","counter_name":"counter123","delta":2,"idempotency_token":{"token":"some_event_id","generation_time":"2024-10-05T14:48:00Z"}}`,
		`{"namespace":"a","counter_name":"b","delta":"9223372036854775807"}`,
		`{"namespace":"a","counterName":"b","delta":-1,"idempotency_token":{}}`,
		`{"idempotency_token":{"token":"t","generation_time":"9999-12-31T23:59:59.999999999Z"}}`,
		`{"delta":1e3}`, `{}`, ``, `[`, `null`, "\x00",
	)
}

func FuzzDecodeNamespace(f *testing.F) {
	fuzzBody(f, abacusv1connect.NamespaceServiceCreateNamespaceProcedure,
		`{"namespace":{"name":"views","counter_type":"EVENTUAL","counter_cardinality":"HIGH","ttl":"3600s","accept_limit":"5.5s",`+
			`"time_partition":{"buckets_per_id":4,"seconds_per_bucket":"600","seconds_per_slice":"86400"},`+
			`"queue_config":{"num_queues":8,"coalesce_ms":"10000","capacity_bytes":"1048576"},"rollup_batch_count":32,`+
			`"retention":{"close_after":"604800s","delete_after":"2592000s"},`+
			`"storage":{"cache":{"type":"MEMORY"},"counter_rollup":{"type":"EMBEDDED"},"event_storage":{"type":"EMBEDDED","cluster":"c","dataset":"d"}},`+
			`"description":"page views","create_time":"2024-10-05T14:48:00Z"}}`,
		`{"namespace":{"name":"x","counter_type":7,"ttl":"-315576000000s"}}`,
		`{"namespace":{"name":"x","time_partition":{"seconds_per_bucket":"-9223372036854775808"}}}`,
		`{"namespace":{}}`, `{"namespace":null}`, `{}`, ``,
	)
}
