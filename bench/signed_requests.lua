-- wrk script for bench/signed_requests.py: sends GETs signed beforehand, each once.
-- $DLAB_SIGNED holds one request per line, "nonce<TAB>date<TAB>authorization"; wrk thread i of n sends
-- lines i, i+n, i+2n, ... ($DLAB_THREADS = n) so no two requests share a signature (dlabd
-- refuses replays).
local created = 0

function setup(thread)
  thread:set("index", created)
  created = created + 1
end

function init(args)
  local count = tonumber(os.getenv("DLAB_THREADS"))
  lines = {}
  local n = 0
  for line in io.lines(os.getenv("DLAB_SIGNED")) do
    if n % count == index then
      table.insert(lines, line)
    end
    n = n + 1
  end
  next_line = 1
  host = os.getenv("DLAB_HOST")
  empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
end

-- $DLAB_UNSIGNED=1: the same requests without the Authorization header (the baseline, against
-- a dlabd with `auth: none`), so that both runs cost wrk the same.
unsigned = os.getenv("DLAB_UNSIGNED") == "1"

function request()
  local line = lines[next_line]
  next_line = next_line + 1
  local nonce, date, authorization = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)")
  local headers = {
    ["Host"] = host,
    ["X-Dlab-Date"] = date,
    ["X-Dlab-Content-Sha256"] = empty,
    ["X-Dlab-Nonce"] = nonce,
  }
  if not unsigned then headers["Authorization"] = authorization end
  return wrk.format("GET", wrk.path, headers)
end
