package sqlite

import (
	"context"

	"github.com/smsbridge/smsbridge/bridge"
	"github.com/smsbridge/smsbridge/bridge/store/internal/storeutil"
)

var _ bridge.ReportJobs = (*Store)(nil)

// selectReportJobs reads the recipients a delivery report names, as
// updateReported picks them, with their messages, at most ?5 of them.
const selectReportJobs = `SELECT ` + storeutil.RecipientCols + `, ` + storeutil.MessageCols + `
	FROM recipients r JOIN messages m ON m.id = r.message_id
	WHERE r.provider = ?1 AND r.provider_id = ?2 AND r.provider_id <> ''
	AND r.state IN ('sent', 'delivered') AND (?3 = '' OR r.to_addr = ?4)
	ORDER BY r.id LIMIT ?5`

// ReportJobs implements bridge.ReportJobs, reading at most
// storeutil.MaxReportJobs recipients: a report names one SMS, and the
// notifications of a larger send under one id are not worth more reads.
func (s *Store) ReportJobs(ctx context.Context, provider, providerID, to string) ([]bridge.Job, error) {
	rows, err := s.rdb.QueryContext(ctx, selectReportJobs, provider, providerID, to, to, storeutil.MaxReportJobs)
	if err != nil {
		return nil, storeErr("reading reported recipients", err)
	}
	defer rows.Close()
	jobs, err := storeutil.AppendJobs(rows, nil, map[string]*bridge.Message{})
	return jobs, storeErr("reading reported recipients", err)
}
