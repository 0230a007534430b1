// The `imsec pcscf` command line the load benches share: the P-CSCF on 127.0.0.1 at port + 1, its
// protected ports at port + 2 and port + 3, the core (S-CSCF) at port, ESP-in-UDP on `encap`,
// udp-enc-tun. Each bench appends its own options (log level, state, compaction).

/** `pcscf` and its options for a bench whose core listens on 127.0.0.1:`port`. */
export function pcscfArgs(port: number, encap: number): string[] {
  return [
    'pcscf',
    '--listen',
    `127.0.0.1:${port + 1}`,
    '--port-c',
    String(port + 2),
    '--port-s',
    String(port + 3),
    '--scscf',
    `127.0.0.1:${port}`,
    '--encap-port',
    String(encap),
    '--mode',
    'udp-enc-tun',
  ];
}
