package smtpin

// htmlCases are mails whose text is HTML made into lines.
func htmlCases() []mailCase {
	return []mailCase{
		{
			name: "HTML only",
			raw: crlf(`Subject: html
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><head><title>Ignored title</title><style>p { color: red; }</style></h=
ead>
<body>
<p>Dear&nbsp;customer,</p>
<p>Your   order &amp; invoice are
ready &lt;#42&gt;.<br>Total: &#8362;120 &euro;</p>
<div>Line one</div><div>Line two</div>
<script>alert("x")</script>
<ul><li>First</li><li>Second</li></ul>
<table><tr><td>Date</td><td>2024-01-01</td></tr></table>
<p>=D7=AA=D7=95=D7=93=D7=94</p>
</body></html>
`),
			subject: "html",
			body:    "Dear customer,\nYour order & invoice are ready <#42>.\nTotal: ₪120 €\nLine one\nLine two\nFirst\nSecond\nDate 2024-01-01\nתודה",
		},
		{
			name: "HTML reply with blockquote",
			raw: crlf(`Subject: Re: meeting
Content-Type: text/html; charset=utf-8

<div dir="ltr">Sounds good, see you at 10.</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 1 Jan 2024 at 09:00, Bob &lt;<a href="mailto:b@x">b@x</a>&gt; wrote:<br></div><blockquote class="gmail_quote"><div dir="ltr">Are we meeting tomorrow?<br><br>Bob</div></blockquote></div>
`),
			subject: "Re: meeting",
			body:    "Sounds good, see you at 10.",
		},
		{
			name: "HTML text starting with > is no quote",
			raw: crlf(`Subject: stock
Content-Type: text/html

<p>&gt; 5 items left</p><pre>  kept   as
  is</pre><p>A
 -- 
B</p>
`),
			subject: "stock",
			body:    "> 5 items left\n  kept   as\n  is\nA -- B",
		},
	}
}
