/* The public API's model accessors (include/nextuser/nextuser.h); loading
 * and freeing are model.h's own functions. */
#include "model/feature_prior.h"
#include "model/model.h"

size_t nu_model_dim(const nu_model *m)
{
    return m ? m->cfg.d : 0;
}

size_t nu_model_num_users(const nu_model *m)
{
    return m ? m->cfg.num_users : 0;
}

const char *nu_model_user_id(const nu_model *m, uint32_t row)
{
    return m && row < m->cfg.num_users ? m->users.names[row] : NULL;
}

size_t nu_model_max_users(const nu_model *m)
{
    return m ? m->cfg.max_users : 0;
}

size_t nu_model_query_dim(const nu_model *m)
{
    return m ? nu_model_query_width(m) : 0;
}

size_t nu_model_num_parameters(const nu_model *m)
{
    return m ? m->layout.total : 0;
}
