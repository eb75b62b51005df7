"""The pass/fail count every Python test here keeps: check(cond, what)
records one check (printing FAIL and what on failure) and returns cond;
summary(name) prints the totals and returns the exit status (1 if any
failed)."""

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)
    return bool(cond)


def summary(name=""):
    print("%s%d passed, %d failed" % (name + ": " if name else "", passed, failed))
    return 1 if failed else 0
