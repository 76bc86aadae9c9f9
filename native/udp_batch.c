/*
 * Batched UDP for the DNS proxy's hit path: recvmmsg(2) and sendmmsg(2) on a socket watched by the Node
 * event loop, so one call into JavaScript answers up to BATCH queries. node:dgram makes one JS callback
 * (with a fresh rinfo object) and one send request per datagram, which on its own costs more CPU than
 * dnsmasq spends on a whole query.
 *
 * JavaScript sees, per endpoint, three views over memory this module owns:
 *   rx       BATCH slots of SLOT_BYTES each: the datagrams of the current batch
 *   lengths  Int32Array[BATCH]: each datagram's length, or -1 if it did not fit its slot (drop it)
 *   addrs    BATCH slots of ADDR_BYTES: each sender's sockaddr, its length in the slot's last byte
 * and calls reply(i, buffer) during onBatch(count) to answer datagram i (sent together after onBatch
 * returns), or sendTo(buffer, addr) at any time with a copied addrs slot (answers that come later).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 64
#define SLOT_BYTES 4096
#define ADDR_BYTES 32
#define TX_SLOT_BYTES 4096
/* Batches read per readiness event before the loop gets a turn (TCP, timers, xDS). */
#define MAX_BATCHES_PER_EVENT 16

typedef struct endpoint {
  int fd;
  int closed;
  int in_batch;
  /* The memory is freed once both the poll handle has closed and the JS object has been collected. */
  int poll_closed;
  int js_collected;
  unsigned rx_count;
  unsigned tx_count;
  napi_env env;
  napi_ref self;
  napi_ref on_batch;
  napi_ref rx_ref;
  napi_ref lengths_ref;
  napi_ref addrs_ref;
  napi_async_context async_context;
  uint8_t *rx;
  int32_t *lengths;
  uint8_t *addrs;
  uv_poll_t poll;
  struct mmsghdr rx_msgs[BATCH];
  struct iovec rx_iov[BATCH];
  struct mmsghdr tx_msgs[BATCH];
  struct iovec tx_iov[BATCH];
  uint8_t tx[BATCH * TX_SLOT_BYTES];
} endpoint;

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  const char *code = uv_err_name(uv_translate_sys_error(err));
  char message[256];
  snprintf(message, sizeof message, "%s %s: %s", syscall, code, strerror(err));
  napi_value code_value, message_value, syscall_value, error;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_create_error(env, code_value, message_value, &error);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_message(napi_env env, const char *message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

static void flush(endpoint *ep) {
  unsigned sent = 0;
  while (sent < ep->tx_count) {
    int n = sendmmsg(ep->fd, ep->tx_msgs + sent, ep->tx_count - sent, MSG_DONTWAIT);
    if (n > 0) {
      sent += (unsigned)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    /* A full send buffer or a vanished client: UDP answers are best effort, as with node:dgram. The one
     * that failed is skipped so the rest still go. */
    sent++;
  }
  ep->tx_count = 0;
}

static void call_on_batch(endpoint *ep, unsigned count) {
  napi_env env = ep->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value callback, self, argv[1], result;
  napi_get_reference_value(env, ep->on_batch, &callback);
  napi_get_reference_value(env, ep->self, &self);
  napi_create_uint32(env, count, &argv[0]);
  ep->in_batch = 1;
  napi_status status = napi_make_callback(env, ep->async_context, self, callback, 1, argv, &result);
  if (status == napi_pending_exception) {
    napi_value exception;
    napi_get_and_clear_last_exception(env, &exception);
    napi_fatal_exception(env, exception);
  }
  /* Still "in the batch" while uncaughtException handlers run: a close() there leaves the async
   * context to on_readable, which destroys it once. */
  ep->in_batch = 0;
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  endpoint *ep = handle->data;
  (void)events;
  if (status < 0 || ep->closed) return;
  for (int round = 0; round < MAX_BATCHES_PER_EVENT && !ep->closed; round++) {
    for (unsigned i = 0; i < BATCH; i++) ep->rx_msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in6);
    int n = recvmmsg(ep->fd, ep->rx_msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    for (int i = 0; i < n; i++) {
      struct msghdr *hdr = &ep->rx_msgs[i].msg_hdr;
      ep->lengths[i] = (hdr->msg_flags & MSG_TRUNC) ? -1 : (int32_t)ep->rx_msgs[i].msg_len;
      ep->addrs[i * ADDR_BYTES + ADDR_BYTES - 1] = (uint8_t)hdr->msg_namelen;
    }
    ep->rx_count = (unsigned)n;
    ep->tx_count = 0;
    call_on_batch(ep, (unsigned)n);
    /* The socket stays open until the poll handle's close callback: answers already given still go. */
    flush(ep);
    if (ep->closed) {
      napi_async_destroy(ep->env, ep->async_context);
      return;
    }
    ep->rx_count = 0;
    if (n < BATCH) return;
  }
}

static endpoint *unwrap_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  napi_get_cb_info(env, info, argc, argv, &self, NULL);
  if (napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    throw_message(env, "not a UDP endpoint");
    return NULL;
  }
  return data;
}

static int send_one(endpoint *ep, const uint8_t *bytes, size_t length, const uint8_t *addr) {
  socklen_t namelen = addr[ADDR_BYTES - 1];
  ssize_t n;
  do {
    n = sendto(ep->fd, bytes, length, MSG_DONTWAIT, (const struct sockaddr *)addr, namelen);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? errno : 0;
}

/* reply(index, buffer): answer datagram `index` of the current batch. */
static napi_value js_reply(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  endpoint *ep = unwrap_this(env, info, &argc, argv);
  if (ep == NULL) return NULL;
  uint32_t index;
  void *data;
  size_t length;
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &index) != napi_ok || napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok) {
    return throw_message(env, "reply(index, buffer)");
  }
  if (ep->closed || index >= ep->rx_count) return NULL;
  const uint8_t *addr = ep->addrs + index * ADDR_BYTES;
  if (!ep->in_batch || length > TX_SLOT_BYTES || ep->tx_count == BATCH) {
    send_one(ep, data, length, addr);
    return NULL;
  }
  unsigned slot = ep->tx_count++;
  memcpy(ep->tx + slot * TX_SLOT_BYTES, data, length);
  ep->tx_iov[slot].iov_len = length;
  ep->tx_msgs[slot].msg_hdr.msg_name = (void *)addr;
  ep->tx_msgs[slot].msg_hdr.msg_namelen = addr[ADDR_BYTES - 1];
  return NULL;
}

/* sendTo(buffer, addr): send now to a sender saved from addrs; returns 0 or an errno. */
static napi_value js_send_to(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  endpoint *ep = unwrap_this(env, info, &argc, argv);
  if (ep == NULL) return NULL;
  void *data, *addr;
  size_t length, addr_length;
  if (argc < 2 || napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok || napi_get_buffer_info(env, argv[1], &addr, &addr_length) != napi_ok ||
      addr_length != ADDR_BYTES) {
    return throw_message(env, "sendTo(buffer, addr)");
  }
  uint8_t namelen = ((uint8_t *)addr)[ADDR_BYTES - 1];
  if (namelen != sizeof(struct sockaddr_in) && namelen != sizeof(struct sockaddr_in6)) return throw_message(env, "sendTo: not an address from addrs");
  int err = ep->closed ? EBADF : send_one(ep, data, length, addr);
  napi_value result;
  napi_create_int32(env, err, &result);
  return result;
}

static void on_poll_closed(uv_handle_t *handle) {
  endpoint *ep = handle->data;
  close(ep->fd);
  ep->fd = -1;
  ep->poll_closed = 1;
  if (ep->js_collected) free(ep);
}

static void on_collected(napi_env env, void *data, void *hint) {
  endpoint *ep = data;
  (void)env;
  (void)hint;
  ep->js_collected = 1;
  if (ep->poll_closed) free(ep);
}

/* Environment teardown (process or worker exit) without close(): stop watching and close the socket. */
static void on_env_cleanup(void *data) {
  endpoint *ep = data;
  if (ep->closed) return;
  ep->closed = 1;
  uv_poll_stop(&ep->poll);
  uv_close((uv_handle_t *)&ep->poll, on_poll_closed);
}

static void release(endpoint *ep) {
  if (ep->closed) return;
  ep->closed = 1;
  napi_env env = ep->env;
  napi_remove_env_cleanup_hook(env, on_env_cleanup, ep);
  napi_delete_reference(env, ep->on_batch);
  napi_delete_reference(env, ep->rx_ref);
  napi_delete_reference(env, ep->lengths_ref);
  napi_delete_reference(env, ep->addrs_ref);
  /* Closed from inside onBatch: the context is still in use until the callback returns. */
  if (!ep->in_batch) napi_async_destroy(env, ep->async_context);
  uv_poll_stop(&ep->poll);
  uv_close((uv_handle_t *)&ep->poll, on_poll_closed);
}

/* close(): stops reading and closes the socket (idempotent); reply and sendTo do nothing afterwards. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  endpoint *ep = unwrap_this(env, info, &argc, NULL);
  if (ep == NULL || ep->closed) return NULL;
  /* From now on the JS object may be collected (on_collected frees the memory with the handle closed). */
  napi_delete_reference(env, ep->self);
  release(ep);
  return NULL;
}

static int parse_address(const char *ip, uint32_t port, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *len = sizeof *v4;
    return AF_INET;
  }
  if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    *len = sizeof *v6;
    return AF_INET6;
  }
  return -1;
}

static napi_value make_view(napi_env env, size_t bytes, void **data, napi_ref *ref, int int32) {
  napi_value buffer, view;
  napi_create_arraybuffer(env, bytes, data, &buffer);
  memset(*data, 0, bytes);
  if (int32) {
    napi_create_typedarray(env, napi_int32_array, bytes / 4, buffer, 0, &view);
  } else {
    napi_create_typedarray(env, napi_uint8_array, bytes, buffer, 0, &view);
  }
  napi_create_reference(env, view, 1, ref);
  return view;
}

/* open(ip, port, bufferBytes, onBatch) → endpoint object with port, rx, lengths, addrs, reply, sendTo, close. */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char ip[64];
  size_t ip_length;
  uint32_t port, buffer_bytes;
  napi_valuetype callback_type;
  if (argc < 4 || napi_get_value_string_utf8(env, argv[0], ip, sizeof ip, &ip_length) != napi_ok || napi_get_value_uint32(env, argv[1], &port) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &buffer_bytes) != napi_ok || napi_typeof(env, argv[3], &callback_type) != napi_ok || callback_type != napi_function) {
    return throw_message(env, "open(ip, port, bufferBytes, onBatch)");
  }
  struct sockaddr_storage address;
  socklen_t address_length;
  int family = parse_address(ip, port, &address, &address_length);
  if (family < 0) return throw_message(env, "open: not an IP address");
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int size = (int)buffer_bytes;
  /* Capped by net.core.[rw]mem_max; the default still works. */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (bind(fd, (struct sockaddr *)&address, address_length) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  struct sockaddr_storage bound;
  socklen_t bound_length = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &bound_length);
  uint32_t bound_port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port : ((struct sockaddr_in6 *)&bound)->sin6_port);

  endpoint *ep = calloc(1, sizeof *ep);
  if (ep == NULL) {
    close(fd);
    return throw_message(env, "open: out of memory");
  }
  ep->fd = fd;
  ep->env = env;
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  napi_value self, rx, lengths, addrs, port_value, resource_name;
  napi_create_object(env, &self);
  rx = make_view(env, BATCH * SLOT_BYTES, (void **)&ep->rx, &ep->rx_ref, 0);
  lengths = make_view(env, BATCH * 4, (void **)&ep->lengths, &ep->lengths_ref, 1);
  addrs = make_view(env, BATCH * ADDR_BYTES, (void **)&ep->addrs, &ep->addrs_ref, 0);
  for (unsigned i = 0; i < BATCH; i++) {
    ep->rx_iov[i].iov_base = ep->rx + i * SLOT_BYTES;
    ep->rx_iov[i].iov_len = SLOT_BYTES;
    ep->rx_msgs[i].msg_hdr.msg_iov = &ep->rx_iov[i];
    ep->rx_msgs[i].msg_hdr.msg_iovlen = 1;
    ep->rx_msgs[i].msg_hdr.msg_name = ep->addrs + i * ADDR_BYTES;
    ep->tx_iov[i].iov_base = ep->tx + i * TX_SLOT_BYTES;
    ep->tx_msgs[i].msg_hdr.msg_iov = &ep->tx_iov[i];
    ep->tx_msgs[i].msg_hdr.msg_iovlen = 1;
  }
  napi_create_reference(env, argv[3], 1, &ep->on_batch);
  napi_create_string_utf8(env, "DnsUdpBatch", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, self, resource_name, &ep->async_context);
  napi_create_uint32(env, bound_port, &port_value);
  napi_property_descriptor properties[] = {
    {"port", NULL, NULL, NULL, NULL, port_value, napi_enumerable, NULL},
    {"rx", NULL, NULL, NULL, NULL, rx, napi_enumerable, NULL},
    {"lengths", NULL, NULL, NULL, NULL, lengths, napi_enumerable, NULL},
    {"addrs", NULL, NULL, NULL, NULL, addrs, napi_enumerable, NULL},
    {"reply", NULL, js_reply, NULL, NULL, NULL, napi_default, NULL},
    {"sendTo", NULL, js_send_to, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, self, sizeof properties / sizeof properties[0], properties);
  napi_wrap(env, self, ep, on_collected, NULL, NULL);
  napi_add_env_cleanup_hook(env, on_env_cleanup, ep);
  /* The endpoint lives until close(), like a listening socket: JS holding it or not. */
  napi_create_reference(env, self, 1, &ep->self);
  uv_poll_init(loop, &ep->poll, fd);
  ep->poll.data = ep;
  uv_poll_start(&ep->poll, UV_READABLE, on_readable);
  return self;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value open, batch, slot, addr;
  napi_create_function(env, "open", NAPI_AUTO_LENGTH, js_open, NULL, &open);
  napi_create_uint32(env, BATCH, &batch);
  napi_create_uint32(env, SLOT_BYTES, &slot);
  napi_create_uint32(env, ADDR_BYTES, &addr);
  napi_set_named_property(env, exports, "open", open);
  napi_set_named_property(env, exports, "batch", batch);
  napi_set_named_property(env, exports, "slotBytes", slot);
  napi_set_named_property(env, exports, "addrBytes", addr);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
