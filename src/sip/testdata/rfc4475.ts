// A selection of the RFC 4475 torture messages (transcribed; long values of §3.1.1.7 rebuilt by code),
// as CRLF text. `valid` ones must parse and validate; `invalid` ones must fail with the given code, or
// be accepted where the RFC allows a liberal receiver (`tolerated`).

/** The 150-octet SDP body most of the RFC 4475 messages carry (IP address varies). */
export function sdp(ip = '192.0.2.3', ip2 = '192.0.2.4'): string {
  return `v=0\r\no=mhandley 29739 7272939 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip2}\r\nt=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n`;
}

const lines = (...l: string[]) => `${l.join('\r\n')}\r\n`;

/** §3.1.1.1 A Short Tortuous INVITE (wsinv). */
export const WSINV =
  lines(
    'INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0',
    'TO :',
    ' sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n',
    'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>',
    '  ;',
    '  tag = 98asjd8',
    'MaX-fOrWaRdS: 0068',
    'Call-ID: wsinv.ndaksdj@192.0.2.1',
    'Content-Length   : 150',
    'cseq: 0009',
    '  INVITE',
    'Via  : SIP  /   2.0',
    ' /UDP',
    '    192.0.2.2;branch=390skdjuw',
    's :',
    'NewFangledHeader:   newfangled value',
    ' continued newfangled value',
    'UnknownHeaderWithUnusualValue: ;;,,;;,;',
    'Content-Type: application/sdp',
    'Route:',
    ' <sip:services.example.com;lr;unknownwith=value;unknown-no-value>',
    'v:  SIP  / 2.0  / TCP     spindle.example.com   ;',
    '  branch  =   z9hG4bK9ikj8  ,',
    ' SIP  /    2.0   / UDP  192.168.255.111   ; branch=',
    ' z9hG4bK30239',
    'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =',
    '      newvalue ;',
    '  secondparam ; q = 0.33',
    '',
  ) + sdp();

/** §3.1.1.2 Wide Range of Valid Characters (intmeth); the To display name holds escaped BEL, NUL, DEL. */
export const INTMETH = lines(
  "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0",
  "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~",
  `To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>`,
  "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com> ;fromParam''~+*_!.-%=\"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439\";tag=_token~1'+`*%!-.",
  "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
  "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~",
  'Max-Forwards: 255',
  "extensionHeader-!.%*+_`'~:\uFEFF\u5927\u505C\u96FB",
  'Content-Length: 0',
  '',
);

/** §3.1.1.3 Valid Use of the % Escaping Mechanism (esc01). */
export const ESC01 =
  lines(
    'INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0',
    'To: sip:%75se%72@example.com',
    'From: <sip:I%20have%20spaces@example.net>;tag=938',
    'Max-Forwards: 87',
    'i: esc01.239409asdfakjkn23onasd0-3234',
    'CSeq: 234234 INVITE',
    'Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw',
    'C: application/sdp',
    'Contact:',
    '  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>',
    'Content-Length: 150',
    '',
  ) + sdp('192.0.2.1', '192.0.2.1');

/** §3.1.1.4 Escaped Nulls in URIs (escnull). */
export const ESCNULL = lines(
  'REGISTER sip:example.com SIP/2.0',
  'To: sip:null-%00-null@example.com',
  'From: sip:null-%00-null@example.com;tag=839923423',
  'Max-Forwards: 70',
  'Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd',
  'CSeq: 14398234 REGISTER',
  'Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw',
  'Contact: <sip:%00@host5.example.com>',
  'Contact: <sip:%00%00@host5.example.com>',
  'L:0',
  '',
);

/** §3.1.1.6 Message with No LWS between Display Name and < (lwsdisp). */
export const LWSDISP = lines(
  'OPTIONS sip:user@example.com SIP/2.0',
  'To: sip:user@example.com',
  'From: caller<sip:caller@example.com>;tag=323',
  'Max-Forwards: 70',
  'Call-ID: lwsdisp.1234abcd@funky.example.com',
  'CSeq: 60 OPTIONS',
  'Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw',
  'l: 0',
  '',
);

/** §3.1.1.7 Long Values in Header Fields (longreq), rebuilt: long names, values, 30 Via values. */
export const LONGREQ = (() => {
  const long = 'long'.repeat(40);
  const vias = Array.from({ length: 30 }, (_, i) => `Via: SIP/2.0/TCP sip${i}.example.com:5060;branch=z9hG4bK${'k'.repeat(200)}${i}`);
  return lines(
    'INVITE sip:user@example.com SIP/2.0',
    `To: "I have a user name of ${'extreme'.repeat(10)} proportion"<sip:user@example.com:6000;unknownparam1=very${long}value;${'name'.repeat(25)}=shortvalue;very${long}ParameterNameWithNoValue>`,
    `F: sip:${'amazinglylongcallername'.repeat(5)}@example.net;tag=${'12982'.repeat(30)};unknownheaderparam${'name'.repeat(20)}=unknowheaderparamvalue${'value'.repeat(20)};unknownValueless${'name'.repeat(20)}`,
    `Call-ID: longreq.one${'really'.repeat(30)}longcallid`,
    'CSeq: 3882340 INVITE',
    `Unknown-${'Long'.repeat(20)}-Name: unknown-${'long'.repeat(20)}-value; unknown-${'long'.repeat(20)}-parameter-name = unknown-${'long'.repeat(20)}-parameter-value`,
    ...vias,
    'Max-Forwards: 70',
    `Contact: <sip:amazinglylongcallername@host5.example.net>`,
    'Content-Type: application/sdp',
    'l: 150',
    '',
  ) + sdp('192.0.2.1', '192.0.2.1');
})();

/** §3.1.1.8 Extra Trailing Octets in a UDP Datagram (dblreq): a second message after Content-Length 0. */
export const DBLREQ = lines(
  'REGISTER sip:example.com SIP/2.0',
  'To: sip:j.user@example.com',
  'From: sip:j.user@example.com;tag=43251j3j324',
  'Max-Forwards: 8',
  'I: dblreq.0ha0isndaksdj99sdfafnl3lk233412',
  'Contact: sip:j.user@host.example.com',
  'CSeq: 8 REGISTER',
  'Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492',
  'Content-Length: 0',
  '',
  'INVITE sip:joe@example.com SIP/2.0',
  't: sip:joe@example.com',
  'From: sip:caller@example.net;tag=141334',
  '',
);

/** §3.1.1.9 Semicolon-Separated Parameters in URI User Part (semiuri). */
export const SEMIURI = lines(
  'OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0',
  'To: sip:j_user@example.com',
  'From: sip:caller@example.org;tag=33242',
  'Max-Forwards: 3',
  'Call-ID: semiuri.0ha0isndaksdj',
  'CSeq: 8 OPTIONS',
  'Accept: application/sdp, application/pkcs7-mime,',
  '        multipart/mixed, multipart/signed,',
  '        message/sip, message/sipfrag',
  'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw',
  'l: 0',
  '',
);

/** §3.1.1.10 Varied and Unknown Transport Types (transports). */
export const TRANSPORTS = lines(
  'OPTIONS sip:user@example.com SIP/2.0',
  'To: sip:user@example.com',
  'From: <sip:caller@example.com>;tag=323',
  'Max-Forwards: 70',
  'Call-ID:  transports.kijh4akdnaqjkwendsasfdj',
  'Accept: application/sdp',
  'CSeq: 60 OPTIONS',
  'Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw',
  'Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf',
  'Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj',
  'Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en',
  'Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee',
  'l: 0',
  '',
);

/** §3.1.1.12 Unusual Reason Phrase (unreason), UTF-8. */
export const UNREASON =
  lines(
    'SIP/2.0 200 = 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441\u0442\u043e\u0435',
    'Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923',
    'Call-ID: unreason.1234ksdfak3j2erwedfsASdf',
    'CSeq: 35 INVITE',
    'From: sip:user@example.com;tag=11141343',
    'To: sip:user@example.edu;tag=2229',
    'Content-Length: 150',
    'Content-Type: application/sdp',
    'Contact: <sip:user@host198.example.com>',
    '',
  ) + sdp('192.0.2.198', '192.0.2.198');

/** Invalid messages (§3.1.2) with the code our parser or validateRequest reports. */
const HEAD = (startLine: string, ...more: string[]) =>
  lines(
    startLine,
    'To: sip:j.user@example.com',
    'From: sip:caller@example.net;tag=134161461246',
    'Max-Forwards: 7',
    'Call-ID: torture.0ha0isndaksdjasdf3234nas',
    'Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw',
    ...more,
  );

export const INVALID: ReadonlyArray<{ readonly name: string; readonly text: string; readonly code: string }> = [
  { name: '§3.1.2.1 extraneous header field separators (badinv01)', code: 'SIP_BAD_VIA',
    text: lines('INVITE sip:user@example.com SIP/2.0', 'To: sip:j.user@example.com', 'From: sip:caller@example.net;tag=134161461246',
      'Max-Forwards: 7', 'Call-ID: badinv01.0ha0isndaksdjasdf3234nas', 'CSeq: 8 INVITE', 'Via: SIP/2.0/UDP 192.0.2.15;;,;,,',
      'Contact: "Joe" <sip:joe@example.org>;;;;', 'l: 0', '') },
  { name: '§3.1.2.2 Content-Length larger than the message (clerr)', code: 'SIP_TRUNCATED',
    text: HEAD('INVITE sip:user@example.com SIP/2.0', 'CSeq: 8 INVITE', 'Content-Type: application/sdp', 'Content-Length: 9999', '') + sdp() },
  { name: '§3.1.2.3 negative Content-Length (ncl)', code: 'SIP_BAD_CONTENT_LENGTH',
    text: HEAD('INVITE sip:user@example.com SIP/2.0', 'CSeq: 8 INVITE', 'Content-Length: -999', '') + sdp() },
  { name: '§3.1.2.4 overlarge CSeq (scalar02)', code: 'SIP_BAD_CSEQ',
    text: HEAD('REGISTER sip:example.com SIP/2.0', 'CSeq: 36893488147419103232 REGISTER', 'l: 0', '') },
  { name: '§3.1.2.4 overlarge Max-Forwards (scalar02)', code: 'SIP_BAD_MAX_FORWARDS',
    text: HEAD('REGISTER sip:example.com SIP/2.0', 'CSeq: 1 REGISTER', 'l: 0', '').replace('Max-Forwards: 7', 'Max-Forwards: 300') },
  { name: '§3.1.2.5 overlarge response code (scalarlg / bigcode §3.1.2.19)', code: 'SIP_BAD_START_LINE',
    text: HEAD('SIP/2.0 4294967301 better not break the receiver', 'CSeq: 1 INVITE', 'l: 0', '') },
  { name: '§3.1.2.6 unterminated quoted string in a display name (quotbal)', code: 'SIP_BAD_NAME_ADDR',
    text: lines('INVITE sip:user@example.com SIP/2.0', 'To: "Mr. J. User <sip:j.user@example.com>', 'From: sip:caller@example.net;tag=93334',
      'Max-Forwards: 10', 'Call-ID: quotbal.aksdj', 'CSeq: 0 INVITE', 'Via: SIP/2.0/UDP 192.0.2.53:5060;branch=z9hG4bKkdjuw', 'l: 0', '') },
  { name: '§3.1.2.7 <> enclosing the Request-URI (ltgtruri)', code: 'SIP_BAD_START_LINE',
    text: HEAD('INVITE <sip:user@example.com> SIP/2.0', 'CSeq: 23 INVITE', 'l: 0', '') },
  { name: '§3.1.2.8 embedded LWS in the Request-URI (lwsruri)', code: 'SIP_BAD_START_LINE',
    text: HEAD('INVITE sip:user@example.com; lr SIP/2.0', 'CSeq: 23 INVITE', 'l: 0', '') },
  { name: '§3.1.2.14 spaces within an addr-spec (badaspec)', code: 'SIP_BAD_NAME_ADDR',
    text: lines('OPTIONS sip:user@example.org SIP/2.0', 'Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234', 'Max-Forwards: 70',
      'From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423', 'To: "Watson, Thomas" < sip:t.watson@example.org >',
      'Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3', 'Accept: application/sdp', 'CSeq: 3923239 OPTIONS', 'l: 0', '') },
  { name: '§3.1.2.15 non-token characters in a display name (baddn)', code: 'SIP_BAD_NAME_ADDR',
    text: lines('OPTIONS sip:t.watson@example.org SIP/2.0', 'Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw', 'Max-Forwards:      70',
      'From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43', 'To:      Watson, Thomas <sip:t.watson@example.org>',
      'Call-ID: baddn.31415@c.example.com', 'Accept: application/sdp', 'CSeq:    3923239 OPTIONS', 'l: 0', '') },
  { name: '§3.1.2.16 unknown protocol version (badvers)', code: 'SIP_BAD_VERSION',
    text: lines('OPTIONS sip:t.watson@example.org SIP/7.0', 'Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw', 'Max-Forwards:     70',
      'From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe', 'To:      T. Watson <sip:t.watson@example.org>',
      'Call-ID: badvers.31417@c.example.com', 'CSeq:    1 OPTIONS', 'l: 0', '') },
  { name: '§3.1.2.17 start line and CSeq method mismatch (mismatch01)', code: 'SIP_CSEQ_MISMATCH',
    text: HEAD('OPTIONS sip:user@example.com SIP/2.0', 'CSeq: 8 INVITE', 'l: 0', '') },
  { name: '(insuf) a request missing To, From and Call-ID', code: 'SIP_MISSING_HEADER',
    text: lines('INVITE sip:user@example.com SIP/2.0', 'CSeq: 193942 INVITE', 'Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf', 'l: 0', '') },
];

/** §3.1.2.9 (lwsstart) and §3.1.2.10 (trws): "An element that is liberal in what it accepts may ignore these". */
export const TOLERATED: ReadonlyArray<{ readonly name: string; readonly text: string }> = [
  { name: '§3.1.2.9 multiple SP separating Request-Line elements (lwsstart)', text: HEAD('INVITE  sip:user@example.com  SIP/2.0', 'CSeq: 1 INVITE', 'l: 0', '') },
  { name: '§3.1.2.10 SP at the end of the Request-Line (trws)', text: HEAD('OPTIONS sip:remote-target@example.com SIP/2.0  ', 'CSeq: 1 OPTIONS', 'l: 0', '') },
];
