package smtpin

// cleanCases are mails whose text loses its signature or quoted reply,
// or is unwrapped (format=flowed) or normalised.
func cleanCases() []mailCase {
	return []mailCase{
		{
			name: "signature stripped",
			raw: crlf(`Subject: sig

Server db1 is down.

-- 
Monitoring team
+972-3-1234567
`),
			subject: "sig",
			body:    "Server db1 is down.",
		},
		{
			name: "signature without trailing space stripped",
			raw: crlf(`Subject: sig

Server db1 is down.
--
Monitoring team
`),
			subject: "sig",
			body:    "Server db1 is down.",
		},
		{
			name: "quoted reply stripped",
			raw: crlf(`Subject: Re: meeting

Thanks, see you then.

On Mon, 1 Jan 2024, Bob <b@x> wrote:
> Are we meeting tomorrow?
>
> Bob
`),
			subject: "Re: meeting",
			body:    "Thanks, see you then.",
		},
		{
			name: "interleaved reply and wrapped attribution",
			raw: crlf(`Subject: Re: meeting

On Mon, 1 Jan 2024 at 09:00, Bob Smith from Accounting <
bob.smith@accounting.example.com> wrote:
> Tomorrow?
Yes.
> 10:00?
Make it 11.
`),
			subject: "Re: meeting",
			body:    "Yes.\nMake it 11.",
		},
		{
			name: "Hebrew attribution stripped",
			raw: crlf(`Subject: x
Content-Type: text/plain; charset=utf-8

בסדר גמור, נתראה.

ב-1 בינו׳ 2024, בוב <b@x> כתב/ה:
> נפגשים מחר?
`),
			subject: "x",
			body:    "בסדר גמור, נתראה.",
		},
		{
			name: "Outlook original message stripped",
			raw: crlf(`Subject: RE: invoice

Approved.

-----Original Message-----
From: Bob <b@x>
Sent: Monday, January 1, 2024 9:00 AM
Subject: invoice

Please approve.
`),
			subject: "RE: invoice",
			body:    "Approved.",
		},
		{
			name: "Outlook underscore separator stripped",
			raw: crlf(`Subject: RE: invoice

Approved.

________________________________
From: Bob <b@x>
Sent: Monday, January 1, 2024 9:00 AM

Please approve.
`),
			subject: "RE: invoice",
			body:    "Approved.",
		},
		{
			name: "format=flowed joined",
			raw: crlf(`Subject: flowed
Content-Type: text/plain; charset=utf-8; format=flowed; delsp=no

This paragraph was wrapped by the mail client 
at seventy-two columns and is one line.
 >From the stuffed line.

-- 
sig
`),
			subject: "flowed",
			body:    "This paragraph was wrapped by the mail client at seventy-two columns and is one line.\n>From the stuffed line.",
		},
		{
			name: "whitespace normalised",
			raw: crlf(`Subject:   spaced   

   

  indented line kept   
trailing tabs		



after three blanks
` + "\n\n"),
			subject: "spaced",
			body:    "  indented line kept\ntrailing tabs\n\nafter three blanks",
		},
		{
			name:    "LF line endings",
			raw:     "Subject: lf\nContent-Type: text/plain\n\nline one\nline two\n",
			subject: "lf",
			body:    "line one\nline two",
		},
	}
}
