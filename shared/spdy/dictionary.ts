/**
 * The zlib dictionary SPDY/3 header blocks are compressed with (SPDY/3 draft, section 2.6.10.1).
 *
 * Mirrors moby/spdystream `spdy/dictionary.go` (`headerDictionary`), which lists the 1423 bytes
 * literally. We build the same bytes from their structure instead: a run of length-prefixed words
 * (a 4-byte big-endian length, then the word) followed by one unprefixed tail of status lines,
 * dates and common values. Every peer must use exactly these bytes: zlib stores their Adler-32
 * (0xe3c6a7c2) in the stream header and refuses a stream made with any other dictionary.
 */

const WORDS = [
  // request methods
  'options',
  'head',
  'post',
  'put',
  'delete',
  'trace',
  // HTTP/1.1 header names
  'accept',
  'accept-charset',
  'accept-encoding',
  'accept-language',
  'accept-ranges',
  'age',
  'allow',
  'authorization',
  'cache-control',
  'connection',
  'content-base',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'etag',
  'expect',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'pragma',
  'proxy-authenticate',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'server',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'vary',
  'via',
  'warning',
  'www-authenticate',
  // SPDY's own pseudo headers and their usual values
  'method',
  'get',
  'status',
  '200 OK',
  'version',
  'HTTP/1.1',
  'url',
  'public',
  'set-cookie',
  'keep-alive',
  'origin',
];

const TAIL = [
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505',
  '203 Non-Authoritative Information',
  '204 No Content',
  '301 Moved Permanently',
  '400 Bad Request',
  '401 Unauthorized',
  '403 Forbidden',
  '404 Not Found',
  '500 Internal Server Error',
  '501 Not Implemented',
  '503 Service Unavailable',
  'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec ',
  '00:00:00 ',
  'Mon, Tue, Wed, Thu, Fri, Sat, Sun, ',
  'GMT',
  'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,',
  'text/plain,text/javascript,',
  'publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.',
].join('');

function build(): Buffer {
  const parts: Buffer[] = [];
  for (const word of WORDS) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(word.length);
    parts.push(len, Buffer.from(word, 'latin1'));
  }
  parts.push(Buffer.from(TAIL, 'latin1'));
  return Buffer.concat(parts);
}

/** The SPDY/3 header compression dictionary (1423 bytes). Do not modify. */
export const SPDY3_DICTIONARY: Buffer = build();
