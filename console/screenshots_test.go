package console_test

import (
	"bytes"
	"flag"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The README's "Web console" section prints the command that refreshes
// its pictures:
//
//	go test ./console/ -run '^TestScreenshots$' -count=1 -args -screenshots "$PWD/docs/screenshots"
var screenshots = flag.String("screenshots", "", "write PNGs of the console's main pages to this directory")

// viewport is a window the pages must work in.
type viewport struct {
	name          string
	width, height int64
	mobile        bool
}

var viewports = []viewport{{"desktop", 1280, 800, false}, {"phone", 390, 844, true}}

// pageCheck lists what is wrong with the page shown, for people using a
// phone, a keyboard or a screen reader, or who see less contrast: a page
// wider than the window (it scrolls sideways), a form control without a
// name (a label, aria-label, or a button's text), text whose contrast
// with what is behind it is under WCAG's 4.5:1 (3:1 for large text).
const pageCheck = `(() => {
	const problems = [];
	const de = document.documentElement;
	if (de.scrollWidth > window.innerWidth + 1) {
		problems.push("the page is " + de.scrollWidth + "px wide in a " + window.innerWidth + "px window");
	}
	for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea, button")) {
		const labels = el.labels ? Array.from(el.labels, l => l.textContent).join(" ").trim() : "";
		const name = el.getAttribute("aria-label") || labels || (el.tagName === "BUTTON" ? el.textContent.trim() : "");
		if (!name) problems.push("no name: " + el.outerHTML.slice(0, 100));
	}
	const rgba = s => s.match(/[\d.]+/g).map(Number);
	const lum = c => {
		const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
		return 0.2126 * r + 0.7152 * g + 0.0722 * b;
	};
	const behind = el => {
		for (; el; el = el.parentElement) {
			const c = rgba(getComputedStyle(el).backgroundColor);
			if (c.length < 4 || c[3] > 0) return c;
		}
		return [255, 255, 255];
	};
	const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n; (n = walk.nextNode());) {
		const text = n.textContent.trim(), el = n.parentElement;
		if (!text || el.closest("option, .visually-hidden, .skip") || el.getClientRects().length === 0) continue;
		const st = getComputedStyle(el);
		if (st.visibility === "hidden") continue;
		const a = lum(rgba(st.color)), b = lum(behind(el));
		const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
		const size = parseFloat(st.fontSize), large = size >= 24 || (size >= 18.66 && parseInt(st.fontWeight) >= 700);
		if (ratio < (large ? 3 : 4.5)) problems.push(ratio.toFixed(2) + ":1 for " + JSON.stringify(text.slice(0, 40)));
	}
	return problems;
})()`

// demo gives the daemon what a front desk's morning looks like: a
// confirmed appointment, a reminder that failed, a phone waiting for an
// answer, a scheduled reminder, and a phone that sent STOP.
func demo(t *testing.T, e *env) (scheduled string) {
	t.Helper()
	_, r := e.sent(t, deskToken, `{"to": "050-123-4567", "text": "Hi Dana, your appointment with Dr. Levi is tomorrow at 09:30. Reply YES to confirm.", "reply_to": "desk@example.com"}`, "sent")
	e.callback(t, "status", url.Values{"smsid": {r.ProviderID}, "status": {"DELIVRD"}})
	e.callback(t, "inbound", url.Values{"from": {"972501234567"}, "to": {"972500000001"}, "msg": {"YES, thanks! Can I park at the clinic?"}, "smsid": {"in-1"}})
	e.sent(t, deskToken, `{"to": "050-123-4567", "text": "Yes: the car park is behind the building, free for patients.", "reply_to": "desk@example.com"}`, "sent")
	e.voip.FailRecipient("972527654321", 400, "number is blacklisted")
	e.sent(t, deskToken, `{"to": "052-765-4321", "text": "Reminder: your blood test is on Thursday at 08:00, fasting from midnight.", "reply_to": "desk@example.com"}`, "failed")
	e.callback(t, "inbound", url.Values{"from": {"972545550123"}, "to": {"972500000001"}, "msg": {"Hello, can I move my appointment to next week?"}, "smsid": {"in-2"}})
	e.callback(t, "inbound", url.Values{"from": {"972533334444"}, "to": {"972500000001"}, "msg": {"STOP"}, "smsid": {"in-3"}})
	if code, body := e.api(t, "POST", "/v1/suppressions", deskToken, `{"phone": "054-222-3333", "reason": "asked at the front desk"}`); code != 201 {
		t.Fatalf("suppression: %d %s", code, body)
	}
	later := time.Now().Add(26 * time.Hour).UTC().Format(time.RFC3339)
	scheduled = e.send(t, deskToken, `{"to": "+1 713 555 0100", "text": "Reminder: your appointment is on Monday at 10:00.", "send_at": "`+later+`"}`)
	until(t, "four conversations", func() bool { return e.conversationCount(t) == 4 })
	return scheduled
}

// TestScreenshots opens the console's main pages in chromium, with demo
// data, in a desktop and a phone window: each must work in both (see
// pageCheck). With -screenshots it writes what it saw there as PNGs.
func TestScreenshots(t *testing.T) {
	ctx := newBrowser(t)
	e := startDaemon(t)
	scheduled := demo(t, e)
	out := *screenshots
	if out == "" {
		out = t.TempDir()
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}

	for _, p := range []struct {
		name string
		open []chromedp.Action[chromedp.Void]
	}{
		{"sign-in", []chromedp.Action[chromedp.Void]{chromedp.Navigate(e.base + "/ui/login"), chromedp.WaitVisible(chromedp.ID("secret"))}},
		{"conversations", signIn(e, adminToken, chromedp.WaitVisible(`//ul[@id="conversations"]/li[4]`))},
		{"thread", []chromedp.Action[chromedp.Void]{
			chromedp.Click(`//ul[@id="conversations"]//a[span[@class="phone"]="+972501234567"]`),
			chromedp.WaitVisible(bubble("out", "Yes: the car park is behind the building, free for patients.", "sent")),
		}},
		{"message", []chromedp.Action[chromedp.Void]{chromedp.Navigate(e.base + "/ui/m/" + scheduled), chromedp.WaitVisible(`//button[.="Cancel the queued recipients"]`)}},
		{"opt-outs", []chromedp.Action[chromedp.Void]{chromedp.Navigate(e.base + "/ui/suppressions"), chromedp.WaitVisible(`//table[@id="suppressions"]/tbody/tr[2]`)}},
		{"operations", []chromedp.Action[chromedp.Void]{chromedp.Navigate(e.base + "/ui/ops"), chromedp.WaitVisible(chromedp.ID("providers"))}},
	} {
		if err := chromedp.Do(ctx, p.open...); err != nil {
			t.Fatalf("opening %s: %v\n%s", p.name, err, pageText(ctx))
		}
		for _, v := range viewports {
			opts := []chromedp.EmulateViewportOption{}
			if v.mobile {
				opts = append(opts, chromedp.EmulateMobile, chromedp.EmulatePortrait, chromedp.EmulateTouch)
			}
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(v.width, v.height, opts...)); err != nil {
				t.Fatal(err)
			}
			problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](pageCheck))
			if err != nil {
				t.Fatal(err)
			}
			for _, pr := range problems {
				t.Errorf("%s at %s width: %s", p.name, v.name, pr)
			}
			img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := png.DecodeConfig(bytes.NewReader(img))
			if err != nil || cfg.Width < int(v.width)*9/10 {
				t.Fatalf("%s at %s: screenshot %dx%d, %v", p.name, v.name, cfg.Width, cfg.Height, err)
			}
			file := filepath.Join(out, fmt.Sprintf("%s-%s.png", p.name, v.name))
			if err := os.WriteFile(file, img, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if *screenshots != "" {
		names, _ := filepath.Glob(filepath.Join(out, "*.png"))
		t.Logf("wrote %d screenshots to %s: %s", len(names), out, strings.Join(names, " "))
	}
}
