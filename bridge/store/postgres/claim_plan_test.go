package postgres

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// What a claim reads for the providers outside its quota, and NextDue
// with providers to skip, go by provider through recipients_provider_due:
// with 20,000 recipients of p queued and p left out, neither reads p's.
func TestLeavingProvidersOutReadsNoBacklog(t *testing.T) {
	u, _ := newDatabase(t)
	s := openTest(t, u)
	ctx := context.Background()
	fillQueue(t, s, 20_000, 0, 1_900_000_000_000)
	if _, err := s.pool.Exec(ctx, `INSERT INTO messages (id, channel, account, created) VALUES ('other', 'smtp', 'acme', 1);
		INSERT INTO recipients (message_id, to_addr, provider, state, next_attempt)
			VALUES ('other', '+15550000001', 'zz', 'queued', 1950000000000);
		ANALYZE recipients`); err != nil {
		t.Fatal(err)
	}
	removed := regexp.MustCompile(`Rows Removed by Filter: (\d+)`)
	for name, c := range map[string]struct {
		query string
		args  []any
	}{
		"the claim's others": {selectDueExcept, []any{int64(2_000_000_000_000), 16, []string{"p"}}},
		"NextDue skipping":   {nextDueExcept, []any{[]string{"p"}}},
	} {
		rows, err := s.pool.Query(ctx, "EXPLAIN ANALYZE "+c.query, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		text := strings.Join(plan, "\n")
		if strings.Contains(text, "Seq Scan on recipients") || strings.Contains(text, "recipients_due") {
			t.Errorf("%s reads the queue in order of due time; plan:\n%s", name, text)
		}
		for _, m := range removed.FindAllStringSubmatch(text, -1) {
			if n, _ := strconv.Atoi(m[1]); n > 10 {
				t.Errorf("%s read %d rows to drop them; plan:\n%s", name, n, text)
			}
		}
	}
	// And they find what they are for: zz's recipient.
	next, ok, err := s.NextDue(ctx, "p")
	if err != nil || !ok || next.UnixMilli() != 1_950_000_000_000 {
		t.Errorf("NextDue(p) = %v, %v, %v; want zz's 1950000000000", next.UnixMilli(), ok, err)
	}
}
