// recommend (C++17): the top K users for each new item of an items file,
// through nextuser's public C API with small RAII wrappers.  Prints the CSV
// `nextuser retrieve` writes, exactly as examples/recommend.c does.
//
//   usage: recommend MODEL_DIR ITEMS.jsonl [K]
//
// Build against an installed nextuser:
//   c++ -std=c++17 recommend.cpp $(pkg-config --cflags --libs nextuser) -o recommend
//
// The header is plain C with extern "C" guards; the wrappers below give each
// handle an owner (std::unique_ptr with the matching nu_*_free) and turn a
// failed nu_status into an exception carrying nu_last_error().
#include <nextuser/nextuser.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// ---- RAII over the C handles ------------------------------------------------

// Calls the library's own free function; every nu_*_free accepts NULL.
template <typename T, void (*Free)(T *)>
struct Deleter {
    void operator()(T *p) const noexcept { Free(p); }
};
template <typename T, void (*Free)(T *)>
using Handle = std::unique_ptr<T, Deleter<T, Free>>;

using Model = Handle<nu_model, nu_model_free>;
using Table = Handle<nu_table, nu_table_free>;
using Engine = Handle<nu_engine, nu_engine_free>;
using Session = Handle<nu_session, nu_session_free>;
using Batch = Handle<nu_batch, nu_batch_free>;

// The message is read right away: nu_last_error() is per thread and the
// next failing call on this thread replaces it.
void check(nu_status s, const std::string &what)
{
    if (s != NU_OK)
        throw std::runtime_error(what + ": " + nu_last_error());
}

Model load_model(const std::string &dir)
{
    nu_model *m = nullptr;
    check(nu_model_load(dir.c_str(), &m), "nu_model_load");
    return Model(m);
}

Table open_table(const nu_model *m, const std::string &dir, nu_dtype dtype)
{
    nu_table *t = nullptr;
    check(nu_table_open(m, dir.c_str(), dtype, &t), "nu_table_open");
    return Table(t);
}

Engine create_engine(const nu_model *m, const nu_table *t, const nu_engine_options &o)
{
    nu_engine *e = nullptr;
    check(nu_engine_create(m, t, &o, &e), "nu_engine_create");
    return Engine(e);
}

Session create_session(const nu_engine *e)
{
    nu_session *s = nullptr;
    check(nu_session_create(e, &s), "nu_session_create");
    return Session(s);
}

Batch create_batch(const nu_model *m)
{
    nu_batch *b = nullptr;
    check(nu_batch_create(m, &b), "nu_batch_create");
    return Batch(b);
}

// ---- the program ------------------------------------------------------------

constexpr std::size_t kMaxBatch = 64;
constexpr std::size_t kDefaultK = 100;

// A line of only whitespace carries no item (nextuser retrieve skips it);
// nu_batch_add_json would reject it as invalid JSON.
bool is_blank(const std::string &s)
{
    return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

std::size_t parse_k(const std::string &s)
{
    // stoul accepts "-1" and trailing junk; insist on plain digits.
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 6)
        throw std::runtime_error("K must be a whole number in 1..100000, got \"" + s + "\"");
    const std::size_t k = std::stoul(s);
    if (k == 0 || k > 100000)
        throw std::runtime_error("K must be a whole number in 1..100000, got \"" + s + "\"");
    return k;
}

// Inputs the library skipped or mapped to <unk>: counted per batch until
// it is cleared, so they are summed here before each clear.
struct InputCounts {
    std::size_t unknown_users = 0, unknown_values = 0, truncated_items = 0;
};

class Recommender {
public:
    Recommender(const std::string &model_dir, std::size_t k)
        : k_(k),
          model_(load_model(model_dir)),
          // fp32 is exact; memory-mapped when `nextuser table` wrote one.
          table_(open_table(model_.get(), model_dir, NU_DTYPE_FP32)),
          engine_(create_engine(model_.get(), table_.get(), options(k))),
          // One session per calling thread; this program has one.
          session_(create_session(engine_.get())),
          batch_(create_batch(model_.get())),
          rows_(kMaxBatch * k),
          scores_(kMaxBatch * k)
    {
    }

    // Adds one JSON line; recommends and prints once max_batch are queued.
    // where ("FILE:LINE") prefixes a parse error: the library's message
    // names the field at fault, not the line.
    void add(const std::string &line, const std::string &where)
    {
        if (nu_batch_add_json(batch_.get(), line.data(), line.size()) != NU_OK)
            throw std::runtime_error(where + ": " + nu_last_error());
        if (nu_batch_count(batch_.get()) == kMaxBatch)
            flush();
    }

    // Recommends for the queued items, prints their rows and clears them.
    void flush()
    {
        nu_batch *b = batch_.get();
        const std::size_t count = nu_batch_count(b);
        for (std::size_t first = 0; first < count; first += kMaxBatch) {
            const std::size_t n = std::min(kMaxBatch, count - first);
            check(nu_session_recommend(session_.get(), b, first, n, rows_.data(), scores_.data()),
                  "nu_session_recommend");
            for (std::size_t i = 0; i < n; i++)
                print_item(nu_batch_item_id(b, first + i), &rows_[i * k_], &scores_[i * k_]);
        }
        std::size_t u = 0, v = 0, t = 0;
        nu_batch_input_counts(b, &u, &v, &t);
        counts_.unknown_users += u;
        counts_.unknown_values += v;
        counts_.truncated_items += t;
        nu_batch_clear(b);
    }

    const InputCounts &counts() const { return counts_; }

private:
    // Options carry their size: start from nu_engine_options_init so that
    // fields added by later versions keep their defaults.
    static nu_engine_options options(std::size_t k)
    {
        nu_engine_options o;
        nu_engine_options_init(&o);
        o.k = k;
        o.max_batch = kMaxBatch;
        o.dtype = NU_DTYPE_FP32; // must be an encoding the table holds
        return o;
    }

    // Best first; UINT32_MAX ends the list when fewer than k users are
    // eligible (the item's known users are left out).  printf's "%.7g"
    // keeps the output byte-identical to `nextuser retrieve`.
    void print_item(const char *item, const std::uint32_t *rows, const float *scores) const
    {
        for (std::size_t j = 0; j < k_ && rows[j] != UINT32_MAX; j++) {
            const char *user = nu_model_user_id(model_.get(), rows[j]);
            if (!user)
                throw std::runtime_error("row " + std::to_string(rows[j]) +
                                         " is not a user of the model");
            if (std::printf("%s,%zu,%s,%.7g\n", item, j + 1, user, static_cast<double>(scores[j])) < 0)
                throw std::runtime_error("writing the output failed");
        }
    }

    std::size_t k_;
    // Declared in creation order, so destroyed in reverse: the session
    // before its engine, the engine before the table and model it uses.
    Model model_;
    Table table_;
    Engine engine_;
    Session session_;
    Batch batch_;
    std::vector<std::uint32_t> rows_;
    std::vector<float> scores_;
    InputCounts counts_;
};

int run(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        std::fputs("usage: recommend MODEL_DIR ITEMS.jsonl [K]\n", stderr);
        return 1;
    }
    const std::string model_dir = argv[1], items_path = argv[2];
    const std::size_t k = argc == 4 ? parse_k(argv[3]) : kDefaultK;

    // Picks the kernels for this CPU; reports a bad NU_ISA up front.
    check(nu_init(), "nu_init");
    Recommender rec(model_dir, k);

    std::ifstream items(items_path, std::ios::binary);
    if (!items)
        throw std::runtime_error(items_path + ": cannot open");
    if (std::fputs("item,rank,user,score\n", stdout) < 0)
        throw std::runtime_error("writing the output failed");
    std::string line;
    for (std::size_t lineno = 1; std::getline(items, line); lineno++) {
        if (is_blank(line))
            continue;
        rec.add(line, items_path + ":" + std::to_string(lineno));
    }
    if (items.bad())
        throw std::runtime_error(items_path + ": read failed");
    rec.flush();

    const InputCounts &c = rec.counts();
    if (c.unknown_users || c.unknown_values || c.truncated_items)
        std::fprintf(stderr,
                     "recommend: %zu unknown user ids skipped, %zu items cut to their most "
                     "recent users, %zu unknown feature values read as <unk>\n",
                     c.unknown_users, c.truncated_items, c.unknown_values);
    if (std::fflush(stdout) != 0 || std::ferror(stdout))
        throw std::runtime_error("writing the output failed");
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    try {
        return run(argc, argv);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "recommend: %s\n", e.what());
        return 1;
    }
}
