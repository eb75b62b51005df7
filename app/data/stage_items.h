/* New-item requests from a data directory: the items of a split at stage s
 * (their first s positive users as context), in the items-file format that
 * embed and retrieve read.  Lets a demo or a check feed the held-out items
 * of a data set to the model without any other tool. */
#ifndef NU_STAGE_ITEMS_H
#define NU_STAGE_ITEMS_H

#include <stddef.h>

#include "data/dataset.h"

/* Writes `path` (atomically), one JSON object a line:
 * {"id": ..., "features": {...}, "users": [first s positive user ids]} for
 * every item of `split` with at least s + 1 positives (the items the
 * evaluation scores at stage s), in file order.  with_features 0 leaves
 * "features" out (for a model with other prefix fields).  *written is the
 * number of items. */
nu_status nu_write_stage_items(const nu_dataset *ds, nu_split split, size_t s, int with_features,
                               const char *path, size_t *written);
/* The same from the data directory `dir`, loaded here (`nextuser items`). */
nu_status nu_write_stage_items_from_dir(const char *dir, nu_split split, size_t s,
                                        int with_features, const char *path, size_t *written);

#endif
