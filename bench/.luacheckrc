-- wrk scripts (bench/api_wrk.lua): wrk calls the callbacks the script defines
-- as globals, and per-thread counters are globals so done() can read them
-- through thread:get().
std = "luajit"
globals = {
    "setup", "init", "request", "response", "delay", "done",
    "assigned", "queued", "deletes", "assigned_deletes", "errors",
}
read_globals = { "wrk", "id" }
unused_args = false -- callback signatures are wrk's
max_line_length = 100
