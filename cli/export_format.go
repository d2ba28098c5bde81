package cli

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/types/known/timestamppb"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// exportRow is one row of an export file: one event.
type exportRow struct {
	Namespace, Counter, EventID string
	// Time is the event's generation_time, in UTC.
	Time time.Time
	// Delta is 0 for a clear.
	Delta int64
	Clear bool
}

// rowOf is the row of event e of the export req.
func rowOf(req *abacusv1.ExportEventsRequest, e *abacusv1.Event) exportRow {
	counter := e.GetCounterName()
	if counter == "" {
		counter = req.GetCounterName()
	}
	return exportRow{
		Namespace: req.GetNamespace(),
		Counter:   counter,
		EventID:   e.GetEventId(),
		Time:      e.GetGenerationTime().AsTime().UTC(),
		Delta:     e.GetDelta(),
		Clear:     e.GetClear(),
	}
}

// event is the row as ExportEventsRequest.resume_after wants it.
func (r exportRow) event() *abacusv1.Event {
	e := &abacusv1.Event{CounterName: r.Counter, EventId: r.EventID, GenerationTime: timestamppb.New(r.Time)}
	if r.Clear {
		e.Kind = &abacusv1.Event_Clear{Clear: true}
	} else {
		e.Kind = &abacusv1.Event_Delta{Delta: r.Delta}
	}
	return e
}

// sink is an export file being written.
type sink interface {
	// write writes rows and hands them to the operating system before it
	// returns, so that an export stopped at any point keeps every row of
	// the chunks written before (whole rows, for JSONL and CSV; for Parquet,
	// once close has written the footer).
	write(rows []exportRow) error
	// size is the number of bytes written to the file so far.
	size() int64
	// close finishes the file; it is called once, after an error too.
	close() error
}

// openSink opens the export file path (stdout for "-") in format. With
// resume it also returns the last complete row of an existing file, if it
// has one, which the rows written next follow; it refuses the file, and
// leaves it as it is, if check refuses that row.
func openSink(format, path string, resume bool, stdout io.Writer, check func(exportRow) error) (sink, *exportRow, error) {
	if format == formatParquet {
		return openParquet(path, resume, stdout, check)
	}
	var c lineCodec = newJSONLCodec()
	if format == formatCSV {
		c = newCSVCodec()
	}
	return openLines(c, path, resume, stdout, check)
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// lineCodec writes and reads the rows of a line-per-row format. Its output
// depends on the row alone, so that a resumed file equals a single-run one.
type lineCodec interface {
	// header is the first line of a file, with its newline; nil for none.
	header() []byte
	// encode returns r's line with its newline, valid until the next call.
	encode(r exportRow) ([]byte, error)
	// decode parses a line (without its newline).
	decode(line []byte) (exportRow, error)
}

// jsonRow is a row of a JSONL export.
type jsonRow struct {
	Namespace      string `json:"namespace"`
	Counter        string `json:"counter"`
	EventID        string `json:"event_id"`
	GenerationTime string `json:"generation_time"`
	Delta          int64  `json:"delta"`
	Clear          bool   `json:"clear"`
}

type jsonlCodec struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newJSONLCodec() *jsonlCodec {
	c := &jsonlCodec{}
	c.enc = json.NewEncoder(&c.buf)
	// Counter names are often URLs: keep their & < > readable.
	c.enc.SetEscapeHTML(false)
	return c
}

func (*jsonlCodec) header() []byte { return nil }

func (c *jsonlCodec) encode(r exportRow) ([]byte, error) {
	c.buf.Reset()
	err := c.enc.Encode(jsonRow{r.Namespace, r.Counter, r.EventID, formatTime(r.Time), r.Delta, r.Clear})
	return c.buf.Bytes(), err
}

func (*jsonlCodec) decode(line []byte) (exportRow, error) {
	var j jsonRow
	if err := json.Unmarshal(line, &j); err != nil {
		return exportRow{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, j.GenerationTime)
	if err != nil {
		return exportRow{}, fmt.Errorf("generation_time: %w", err)
	}
	return exportRow{j.Namespace, j.Counter, j.EventID, t.UTC(), j.Delta, j.Clear}, nil
}

// csvHeader names the columns of a CSV export.
var csvHeader = []string{"namespace", "counter", "event_id", "generation_time", "delta", "clear"}

type csvCodec struct {
	buf bytes.Buffer
	w   *csv.Writer
	rec []string
}

func newCSVCodec() *csvCodec {
	c := &csvCodec{rec: make([]string, len(csvHeader))}
	c.w = csv.NewWriter(&c.buf)
	return c
}

func (c *csvCodec) header() []byte {
	b, _ := c.line(csvHeader)
	return bytes.Clone(b)
}

func (c *csvCodec) encode(r exportRow) ([]byte, error) {
	c.rec[0], c.rec[1], c.rec[2] = r.Namespace, r.Counter, r.EventID
	c.rec[3] = formatTime(r.Time)
	c.rec[4] = strconv.FormatInt(r.Delta, 10)
	c.rec[5] = strconv.FormatBool(r.Clear)
	return c.line(c.rec)
}

func (c *csvCodec) line(rec []string) ([]byte, error) {
	c.buf.Reset()
	if err := c.w.Write(rec); err != nil {
		return nil, err
	}
	c.w.Flush()
	return c.buf.Bytes(), c.w.Error()
}

func (*csvCodec) decode(line []byte) (exportRow, error) {
	rd := csv.NewReader(bytes.NewReader(line))
	rd.FieldsPerRecord = len(csvHeader)
	rec, err := rd.Read()
	if err != nil {
		return exportRow{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, rec[3])
	if err != nil {
		return exportRow{}, fmt.Errorf("generation_time: %w", err)
	}
	delta, err := strconv.ParseInt(rec[4], 10, 64)
	if err != nil {
		return exportRow{}, fmt.Errorf("delta: %w", err)
	}
	clear, err := strconv.ParseBool(rec[5])
	if err != nil {
		return exportRow{}, fmt.Errorf("clear: %w", err)
	}
	return exportRow{rec[0], rec[1], rec[2], t.UTC(), delta, clear}, nil
}

// lineSink writes a JSONL or CSV export.
type lineSink struct {
	codec lineCodec
	f     *os.File // nil for stdout
	cw    *countWriter
	w     *bufio.Writer
}

// openLines opens a line-per-row export file. To resume, it cuts the file
// after its last newline, dropping a row the previous run did not finish,
// and decodes the row before it.
func openLines(c lineCodec, path string, resume bool, stdout io.Writer, check func(exportRow) error) (sink, *exportRow, error) {
	s := &lineSink{codec: c}
	var last *exportRow
	var end int64
	switch {
	case path == "-":
		s.cw = &countWriter{w: stdout}
	case !resume:
		f, err := os.Create(path)
		if err != nil {
			return nil, nil, err
		}
		s.f, s.cw = f, &countWriter{w: f}
	default:
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil {
			return nil, nil, err
		}
		s.f, s.cw = f, &countWriter{w: f}
		if end, last, err = resumeLines(f, c, check); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	s.w = bufio.NewWriterSize(s.cw, 256<<10)
	s.cw.n = end
	if h := c.header(); h != nil && end == 0 {
		if _, err := s.w.Write(h); err != nil {
			s.close()
			return nil, nil, err
		}
	}
	return s, last, nil
}

// resumeLines finds the last complete row of f and, if check accepts it,
// truncates f after it (dropping a row the previous run did not finish)
// and leaves the offset there. It returns that size and the row (nil if
// there is none).
func resumeLines(f *os.File, c lineCodec, check func(exportRow) error) (int64, *exportRow, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	nl, err := lastNewline(f, st.Size())
	if err != nil {
		return 0, nil, err
	}
	end := nl + 1
	last, err := lastRow(f, c, nl)
	if err != nil {
		return 0, nil, err
	}
	if last != nil {
		if err := check(*last); err != nil {
			return 0, nil, err
		}
	}
	if err := f.Truncate(end); err != nil {
		return 0, nil, err
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		return 0, nil, err
	}
	return end, last, nil
}

// lastRow decodes the line of f that ends at offset nl (-1: the file has no
// complete line), after checking that the file starts with the codec's
// header. It returns nil when there is no row.
func lastRow(f *os.File, c lineCodec, nl int64) (*exportRow, error) {
	if nl < 0 {
		return nil, nil
	}
	start, err := lastNewline(f, nl)
	if err != nil {
		return nil, err
	}
	if h := c.header(); h != nil {
		first := make([]byte, min(int64(len(h)), nl+1))
		if _, err := f.ReadAt(first, 0); err != nil {
			return nil, err
		}
		if !bytes.Equal(first, h) {
			return nil, errors.New("it does not start with the header line of a CSV export")
		}
		if start < 0 {
			return nil, nil // the header alone
		}
	}
	line := make([]byte, nl-(start+1))
	if _, err := f.ReadAt(line, start+1); err != nil {
		return nil, err
	}
	r, err := c.decode(line)
	if err != nil {
		return nil, fmt.Errorf("its last complete row (at byte %d) is not a row of an export: %w", start+1, err)
	}
	return &r, nil
}

// lastNewline returns the offset of the last '\n' of f before offset
// before, or -1 if there is none. It reads backwards, a block at a time,
// so that it costs the same on a file of any size.
func lastNewline(f io.ReaderAt, before int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for before > 0 {
		n := min(int64(len(buf)), before)
		if _, err := f.ReadAt(buf[:n], before-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return before - n + int64(i), nil
		}
		before -= n
	}
	return -1, nil
}

func (s *lineSink) write(rows []exportRow) error {
	for _, r := range rows {
		b, err := s.codec.encode(r)
		if err != nil {
			return err
		}
		if _, err := s.w.Write(b); err != nil {
			return err
		}
	}
	return s.w.Flush()
}

func (s *lineSink) size() int64 { return s.cw.n }

func (s *lineSink) close() error {
	err := s.w.Flush()
	if s.f != nil {
		err = errors.Join(err, s.f.Close())
	}
	return err
}

// parquetRow is a row of a Parquet export. Namespace and counter names
// repeat from row to row, hence their dictionaries.
type parquetRow struct {
	Namespace      string    `parquet:"namespace,dict"`
	Counter        string    `parquet:"counter,dict"`
	EventID        string    `parquet:"event_id"`
	GenerationTime time.Time `parquet:"generation_time,timestamp(nanosecond:utc)"`
	Delta          int64     `parquet:"delta"`
	Clear          bool      `parquet:"clear"`
}

// parquetRowGroup is the fewest rows a row group gets before the writer
// cuts one: chunks of the stream (1000 events) would make row groups too
// small to compress and scan well, and this many rows stay a few MB.
const parquetRowGroup = 64 << 10

// parquetSink writes a Parquet export.
type parquetSink struct {
	f       *os.File // nil for stdout
	cw      *countWriter
	w       *parquet.GenericWriter[parquetRow]
	rows    []parquetRow
	pending int // rows written since the last row group was cut
	// rename, when set, is the file f replaces when it is closed: the
	// export being resumed.
	rename string
}

func newParquetSink(f *os.File, w io.Writer) *parquetSink {
	cw := &countWriter{w: w}
	return &parquetSink{f: f, cw: cw, w: parquet.NewGenericWriter[parquetRow](cw,
		parquet.Compression(&parquet.Zstd), parquet.CreatedBy("abacus export", "", ""))}
}

// openParquet opens a Parquet export file. To resume, it copies the rows
// of the existing file into a new one, which replaces it when the export
// is closed: a Parquet file cannot be appended to, its footer being last.
func openParquet(path string, resume bool, stdout io.Writer, check func(exportRow) error) (sink, *exportRow, error) {
	if path == "-" {
		return newParquetSink(nil, stdout), nil, nil
	}
	if resume {
		old, err := os.Open(path)
		if err == nil {
			return resumeParquet(old, path, check)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return newParquetSink(f, f), nil, nil
}

func resumeParquet(old *os.File, path string, check func(exportRow) error) (sink, *exportRow, error) {
	defer old.Close()
	st, err := old.Stat()
	if err != nil {
		return nil, nil, err
	}
	pf, err := parquet.OpenFile(old, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("it is not a complete Parquet file (%v): an export stopped by a crash leaves no footer and cannot be resumed; export again without --resume", err)
	}
	rd := parquet.NewGenericReader[parquetRow](pf)
	defer rd.Close()
	batch := make([]parquetRow, 1024)
	// The last row first, to check it before copying anything.
	var last *exportRow
	if n := rd.NumRows(); n > 0 {
		if err := rd.SeekToRow(n - 1); err != nil {
			return nil, nil, err
		}
		if _, err := rd.Read(batch[:1]); err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, err
		}
		p := batch[0]
		last = &exportRow{p.Namespace, p.Counter, p.EventID, p.GenerationTime.UTC(), p.Delta, p.Clear}
		if err := check(*last); err != nil {
			return nil, nil, err
		}
		if err := rd.SeekToRow(0); err != nil {
			return nil, nil, err
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".resume-*")
	if err != nil {
		return nil, nil, err
	}
	s := newParquetSink(tmp, tmp)
	for {
		n, err := rd.Read(batch)
		if n > 0 {
			if werr := s.writeRows(batch[:n]); werr != nil {
				err = werr
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.close()
			os.Remove(tmp.Name())
			return nil, nil, err
		}
	}
	s.rename = path
	return s, last, nil
}

func (s *parquetSink) write(rows []exportRow) error {
	s.rows = s.rows[:0]
	for _, r := range rows {
		s.rows = append(s.rows, parquetRow{r.Namespace, r.Counter, r.EventID, r.Time, r.Delta, r.Clear})
	}
	return s.writeRows(s.rows)
}

func (s *parquetSink) writeRows(rows []parquetRow) error {
	if _, err := s.w.Write(rows); err != nil {
		return err
	}
	if s.pending += len(rows); s.pending >= parquetRowGroup {
		s.pending = 0
		return s.w.Flush()
	}
	return nil
}

func (s *parquetSink) size() int64 { return s.cw.n }

// close writes the footer, which makes the file readable, and when
// resuming puts the new file in place of the old one.
func (s *parquetSink) close() error {
	err := s.w.Close()
	if s.f == nil {
		return err
	}
	err = errors.Join(err, s.f.Close())
	if s.rename != "" {
		if err != nil {
			os.Remove(s.f.Name())
			return err
		}
		return os.Rename(s.f.Name(), s.rename)
	}
	return err
}
