package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/netio"
)

// Registrations of the APIs whose files are being reworked (long-poll
// fetch on the delayed-operation facility); they move into produce.go,
// fetch.go and delete_records.go when that lands.
func init() {
	// Produce starts at v0 although clients send v3+: librdkafka up to
	// 2.11.0 (Debian's kcat among them) turns gzip, snappy and lz4 off
	// unless the broker's Produce range reaches v0. v0-v2 are really
	// served: their legacy message sets are converted to RecordBatch v2
	// (segment.UpconvertMessageSet).
	register(api{key: kmsg.Produce, min: 0, max: 13,
		raw: func(b *Broker, _ context.Context, r *netio.Request, req kmsg.Request) *netio.Response {
			pr := req.(*kmsg.ProduceRequest)
			resp := b.handleProduce(pr)
			resp.SetVersion(r.Version)
			b.metrics.countErrors(apis[kmsg.Produce], resp)
			if pr.Acks == 0 {
				// acks=0: the client waits for nothing, so a failure can
				// only be signalled by closing the connection, as Kafka
				// does.
				if produceFailed(resp) {
					return &netio.Response{CloseAfter: true}
				}
				return nil
			}
			return encode(resp)
		},
		errorCodes: codes(func(r *kmsg.ProduceResponse, count func(int16)) {
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
	// Fetch counts its error codes where it builds its response frames.
	register(api{key: kmsg.Fetch, min: 4, max: 18,
		raw: func(b *Broker, ctx context.Context, _ *netio.Request, req kmsg.Request) *netio.Response {
			return b.handleFetch(ctx, req.(*kmsg.FetchRequest))
		},
	})
	register(api{key: kmsg.DeleteRecords, min: 0, max: 2,
		handle: method((*Broker).handleDeleteRecords),
		errorCodes: codes(func(r *kmsg.DeleteRecordsResponse, count func(int16)) {
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
}
