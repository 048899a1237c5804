package smtpin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/loadtest"
	"github.com/smsbridge/smsbridge/providers/console"
	"github.com/smsbridge/smsbridge/smtpin"
)

// forgetfulStore accepts every message and keeps none: the cost of
// storing is zero. Only Enqueue is called on the SMTP path; any other
// call panics on the nil interface, which would show the path changed.
type forgetfulStore struct{ bridge.ConversationStore }

func (forgetfulStore) Enqueue(_ context.Context, m *bridge.Message) error {
	for i := range m.Recipients {
		m.Recipients[i].ID, m.Recipients[i].MessageID = int64(i+1), m.ID
	}
	return nil
}

// BenchmarkFrontCeiling is BenchmarkSMTPAcknowledge (internal/daemon)
// with a store that costs nothing and no dispatcher: the SMTP front alone
// (go-smtp with smsbridge's backend, MIME decoding, number parsing, sender
// policy, segment counting) beside the discard server, 20 sessions, 1 KiB.
// Its ratio is the ceiling of the real one, whatever the store does.
//
//	go test -run '^$' -bench FrontCeiling -benchtime 1x ./smtpin
func BenchmarkFrontCeiling(b *testing.B) {
	const dur = 5 * time.Second
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	br, err := bridge.New(forgetfulStore{}, []bridge.Provider{console.New("console", nil, log)},
		[]bridge.Route{{Prefix: "+", Providers: []string{"console"}}},
		[]bridge.Account{{Name: "load", Emails: []string{"*@localhost"}, SenderIDs: []string{"Load"}}},
		bridge.Options{Region: "IL", MaxSegments: 10})
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		cpu := loadtest.ProcessCPU()
		ceiling, err := loadtest.RunDiscard(context.Background(), loadtest.Options{Sessions: 20, Size: 1024, Duration: dur, From: "load@localhost"})
		if err != nil {
			b.Fatal(err)
		}
		ceilingCPU := loadtest.PerMessage(loadtest.ProcessCPU()-cpu, ceiling.Sent)

		srv := smtpin.New(br, smtpin.Config{Domains: []string{"sms.localhost"}, Text: "body",
			MaxMessageBytes: 1 << 20, MaxRecipients: 50, ReadTimeout: time.Minute, WriteTimeout: time.Minute}, nil, log)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		cpu = loadtest.ProcessCPU()
		res, err := loadtest.Run(context.Background(), loadtest.Options{Addr: ln.Addr().String(), Sessions: 20, Size: 1024, Duration: dur, From: "load@localhost",
			To: func(i int) string { return fmt.Sprintf("+97250%07d@sms.localhost", i%10000000) }})
		resCPU := loadtest.PerMessage(loadtest.ProcessCPU()-cpu, res.Sent)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			b.Error(err)
		}
		cancel()
		<-done
		if err != nil {
			b.Fatal(err)
		}
		if res.Failed > 0 {
			b.Fatalf("%d failed: %v", res.Failed, res.Errors)
		}
		b.ReportMetric(ceiling.Rate, "discard-msgs/s")
		b.ReportMetric(res.Rate, "msgs/s")
		b.ReportMetric(res.Rate/ceiling.Rate, "ratio")
		b.ReportMetric(ceilingCPU, "discard-cpu-us/msg")
		b.ReportMetric(resCPU, "cpu-us/msg")
	}
}
