/*
 * scf_handler.h: the handler ABI between scf-shim and a native handler library (version 1).
 *
 * A library exports one symbol per handler method, named exactly like the method. With the handler
 * `index.main_handler`, scf-shim opens `libindex.so` (or `index.so`) from the code root and calls:
 *
 *     int32_t main_handler(const scf_request *request, scf_buffer *output);
 *
 * The shim passes the event and the context as JSON bytes. The handler fills `output` with JSON bytes it
 * allocated and a `free` function the shim calls exactly once to give them back, and returns:
 *   SCF_OK            output holds the JSON result;
 *   SCF_ERROR         output holds an error document
 *                       {"errorType":"HandledError"|"UnhandledError"|"MarshalError"|"InvalidEvent",
 *                        "errorMessage":"...","stackTrace":"..."};
 *   SCF_ABI_MISMATCH  request->abi_version is not the version the library was built for.
 * The shim classifies the outcome into the platform's error taxonomy (docs/errors.md). A crash of the
 * handler ends the instance; the platform reports it as a process exit (439).
 */
#ifndef SCF_HANDLER_H
#define SCF_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SCF_ABI_VERSION 1u

#define SCF_OK 0
#define SCF_ERROR 1
#define SCF_ABI_MISMATCH 2

typedef struct scf_request {
    uint32_t abi_version;     /* SCF_ABI_VERSION of the caller */
    const uint8_t *event;     /* event JSON, not NUL-terminated */
    size_t event_len;
    const uint8_t *context;   /* context JSON, not NUL-terminated */
    size_t context_len;
} scf_request;

typedef void (*scf_free_fn)(uint8_t *data, size_t len, size_t cap, void *opaque);

typedef struct scf_buffer {
    uint8_t *data;            /* bytes allocated by the library (may be NULL when len is 0) */
    size_t len;
    size_t cap;
    scf_free_fn free;         /* frees data; NULL when there is nothing to free */
    void *opaque;             /* passed back to free untouched */
} scf_buffer;

typedef int32_t (*scf_handler_fn)(const scf_request *request, scf_buffer *output);

#ifdef __cplusplus
}
#endif

#endif /* SCF_HANDLER_H */
