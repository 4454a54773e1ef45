/* attn.h - the public C API of the attn library, all of it: the op-neutral core (status codes,
 * tensor views, backends, buffers, version) and one header per op. Including only the headers
 * a program needs (attn/attn_core.h, attn/attn_sdpa.h, ...) works too. */
#ifndef ATTN_ATTN_H_
#define ATTN_ATTN_H_

#include "attn/attn_core.h"

/* One line per op (docs/adding-an-op.md). */
#include "attn/attn_sdpa.h"
#include "attn/attn_rope.h"
#include "attn/attn_linear.h"
#include "attn/attn_transnormer.h"
#include "attn/attn_rattention.h"
#include "attn/attn_kvcache.h"
#include "attn/attn_model.h"
#include "attn/attn_explain.h"
#include "attn/attn_transfer.h"

#include "attn/attn_schedule.h"

#endif /* ATTN_ATTN_H_ */
