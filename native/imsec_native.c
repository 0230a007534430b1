// imsec_native: the few Linux system calls the xfrm IPsec backend needs and Node lacks
// (netlink(7) sockets for NETLINK_XFRM; a UDP socket with UDP_ENCAP_ESPINUDP, udp(7) / RFC 3948),
// and glibc's malloc_trim(3) for the P-CSCF's compaction after a registration burst (issue 9 §2).
// Synchronous on purpose: the kernel answers netlink requests at once. Errors carry errno.
#define _GNU_SOURCE
#include <node_api.h>
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_ENCAP
#define UDP_ENCAP 100
#endif
#ifndef UDP_ENCAP_ESPINUDP
#define UDP_ENCAP_ESPINUDP 2
#endif
#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

// Throws an Error with .errno and .syscall (the TS side names the errno).
static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s (errno %d)", syscall, strerror(err), err);
  napi_value m, e, n, s;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_create_int32(env, err, &n);
  napi_set_named_property(env, e, "errno", n);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, e, "syscall", s);
  napi_throw(env, e);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static int arg_int(napi_env env, napi_value v, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

// netlinkOpen(protocol, groups = 0) -> fd. Sets NETLINK_CAP_ACK (error replies do not echo the
// request, which may hold keys) and NETLINK_EXT_ACK (the kernel explains its errors).
static napi_value netlink_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t proto, groups = 0;
  if (argc < 1 || !arg_int(env, argv[0], &proto)) return throw_type(env, "netlinkOpen(protocol, groups?)");
  if (argc > 1 && !arg_int(env, argv[1], &groups)) return throw_type(env, "netlinkOpen: groups must be a number");
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
  if (fd < 0) return throw_errno(env, "socket(AF_NETLINK)", errno);
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = (uint32_t)groups;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind(AF_NETLINK)", e);
  }
  int one = 1, rcvbuf = 1 << 20;
  (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  return make_int(env, fd);
}

// netlinkSend(fd, bytes) -> octets sent (to the kernel, pid 0).
static napi_value netlink_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  void *data = NULL;
  size_t len = 0;
  bool is_ta = false;
  if (argc < 2 || !arg_int(env, argv[0], &fd)) return throw_type(env, "netlinkSend(fd, bytes)");
  napi_is_typedarray(env, argv[1], &is_ta);
  if (!is_ta) return throw_type(env, "netlinkSend: bytes must be a Uint8Array");
  napi_typedarray_type tt;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(env, argv[1], &tt, &len, &data, &ab, &off);
  if (tt != napi_uint8_array) return throw_type(env, "netlinkSend: bytes must be a Uint8Array");
  struct sockaddr_nl to;
  memset(&to, 0, sizeof to);
  to.nl_family = AF_NETLINK;
  ssize_t n;
  do n = sendto(fd, data, len, 0, (struct sockaddr *)&to, sizeof to);
  while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendto(netlink)", errno);
  return make_int(env, n);
}

// netlinkRecv(fd, timeoutMs) -> Buffer with one datagram, or null when nothing came in time.
static napi_value netlink_recv(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, timeout;
  if (argc < 2 || !arg_int(env, argv[0], &fd) || !arg_int(env, argv[1], &timeout)) return throw_type(env, "netlinkRecv(fd, timeoutMs)");
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int r;
  do r = poll(&p, 1, timeout);
  while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "poll(netlink)", errno);
  napi_value result;
  if (r == 0) {
    napi_get_null(env, &result);
    return result;
  }
  ssize_t size;
  do size = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
  while (size < 0 && errno == EINTR);
  if (size < 0) {
    if (errno == EAGAIN) {
      napi_get_null(env, &result);
      return result;
    }
    return throw_errno(env, "recv(netlink)", errno);
  }
  void *buf;
  if (napi_create_buffer(env, (size_t)size, &buf, &result) != napi_ok) return throw_type(env, "netlinkRecv: out of memory");
  ssize_t n;
  do n = recv(fd, buf, (size_t)size, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "recv(netlink)", errno);
  if (n < size) memset((char *)buf + n, 0, (size_t)(size - n));
  return result;
}

// close(fd)
static napi_value fd_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || !arg_int(env, argv[0], &fd)) return throw_type(env, "close(fd)");
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

// Fills `ss` with addr:port. `family` 4 or 6 demands that family; 0 takes whichever parses.
// Returns the address family used (AF_INET / AF_INET6), or 0 when `addr` is no such address.
static int ip_sockaddr(const char *addr, int port, int family, struct sockaddr_storage *ss, socklen_t *sl) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (family != 6 && inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *sl = sizeof *a4;
    return AF_INET;
  }
  if (family != 4 && inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *sl = sizeof *a6;
    return AF_INET6;
  }
  return 0;
}

// espInUdpSocket(family 4|6, address, port) -> { fd, port }: a UDP socket bound to address:port
// with UDP_ENCAP_ESPINUDP, so the kernel decapsulates arriving ESP-in-UDP (RFC 3948) for XFRM
// and eats NAT-keepalives. Nobody needs to read it; it only has to stay open.
static napi_value esp_in_udp_socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t family, port;
  char addr[64];
  size_t alen = 0;
  napi_valuetype t;
  if (argc < 3 || !arg_int(env, argv[0], &family) || !arg_int(env, argv[2], &port) ||
      napi_typeof(env, argv[1], &t) != napi_ok || t != napi_string)
    return throw_type(env, "espInUdpSocket(family, address, port)");
  napi_get_value_string_utf8(env, argv[1], addr, sizeof addr, &alen);
  if ((family != 4 && family != 6) || port < 0 || port > 65535) return throw_type(env, "espInUdpSocket: family 4|6, port 0..65535");
  struct sockaddr_storage ss;
  socklen_t sl;
  if (!ip_sockaddr(addr, port, family, &ss, &sl))
    return throw_type(env, family == 4 ? "espInUdpSocket: not an IPv4 address" : "espInUdpSocket: not an IPv6 address");
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return throw_errno(env, "socket(udp)", errno);
  int one = 1, encap = UDP_ENCAP_ESPINUDP;
  if (family == 6) (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  const char *step = NULL;
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) step = "bind(udp)";
  else if (setsockopt(fd, SOL_UDP, UDP_ENCAP, &encap, sizeof encap) < 0) step = "setsockopt(UDP_ENCAP)";
  else if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) step = "getsockname";
  if (step) {
    int e = errno;
    close(fd);
    return throw_errno(env, step, e);
  }
  int bound = ntohs(family == 4 ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "fd", make_int(env, fd));
  napi_set_named_property(env, o, "port", make_int(env, bound));
  return o;
}

// udpSend(fd, address, port, bytes) -> octets sent: a datagram from a socket made here (the
// ESP-in-UDP socket: RFC 3948 NAT-keepalives must leave from the encapsulation port).
static napi_value udp_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, port;
  char addr[64];
  size_t alen = 0;
  napi_valuetype t;
  bool is_ta = false;
  if (argc < 4 || !arg_int(env, argv[0], &fd) || !arg_int(env, argv[2], &port) || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_string)
    return throw_type(env, "udpSend(fd, address, port, bytes)");
  napi_get_value_string_utf8(env, argv[1], addr, sizeof addr, &alen);
  napi_is_typedarray(env, argv[3], &is_ta);
  if (!is_ta || port < 1 || port > 65535) return throw_type(env, "udpSend: port 1..65535, bytes a Uint8Array");
  napi_typedarray_type tt;
  napi_value ab;
  size_t off, len;
  void *data;
  napi_get_typedarray_info(env, argv[3], &tt, &len, &data, &ab, &off);
  struct sockaddr_storage ss;
  socklen_t sl;
  if (!ip_sockaddr(addr, port, 0, &ss, &sl)) return throw_type(env, "udpSend: not an IP address");
  ssize_t n;
  do n = sendto(fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl);
  while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendto(udp)", errno);
  return make_int(env, n);
}

#ifdef __GLIBC__
// mallocTrim() -> whether memory went back to the OS. A registration burst leaves glibc's arenas
// (one per thread that allocated: V8's GC helpers, libuv's pool) holding freed chunks in pages that
// free() keeps; malloc_trim(0) returns every whole free page of every arena (madvise), which free()
// alone does only at the top of the main heap. Absent on other C libraries.
static napi_value malloc_trim_now(napi_env env, napi_callback_info info) {
  napi_value r;
  napi_get_boolean(env, malloc_trim(0) != 0, &r);
  return r;
}
#endif

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      {"netlinkOpen", NULL, netlink_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"netlinkSend", NULL, netlink_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"netlinkRecv", NULL, netlink_recv, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, fd_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"espInUdpSocket", NULL, esp_in_udp_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpSend", NULL, udp_send, NULL, NULL, NULL, napi_enumerable, NULL},
#ifdef __GLIBC__
      {"mallocTrim", NULL, malloc_trim_now, NULL, NULL, NULL, napi_enumerable, NULL},
#endif
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
