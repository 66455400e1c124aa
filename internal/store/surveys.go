package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/survey"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// Surveys (问卷): definitions in surveys (the spec column holds survey.Definition as JSON),
// one row per stored answer in survey_responses, and one row per (survey, customer) in
// survey_respondents, which makes "one answer per customer" hold under concurrent submits on
// both engines (a primary key, not a read-then-write). A submission is one transaction: the
// response, the mapped attributes, the option tags, the "Survey Answered" event and the
// survey's counters commit together or not at all.

func init() { mergeHooks = append(mergeHooks, mergeSurveys) }

// ErrAlreadyAnswered is returned when a customer answers again a survey that allows one
// answer per customer. Nothing is written.
var ErrAlreadyAnswered = errors.New("survey already answered by this customer")

// SurveyNotAcceptingError is returned when a survey takes no answers now; Why is "draft",
// "closed", "not_started" or "ended" (survey.Survey.Accepting).
type SurveyNotAcceptingError struct{ Why string }

func (e *SurveyNotAcceptingError) Error() string { return "survey not accepting answers: " + e.Why }

// surveyLinkSecretKey is the settings key of the HMAC secret of signed survey links.
const surveyLinkSecretKey = "survey.link_secret"

const surveyCols = `id, token, status, spec, responses, respondents, COALESCE(created_by, 0), created_at, updated_at, COALESCE(closed_at, 0)`

func scanSurvey(sc interface{ Scan(...any) error }) (*survey.Survey, error) {
	var (
		s                        survey.Survey
		spec                     string
		created, updated, closed int64
	)
	if err := sc.Scan(&s.ID, &s.Token, &s.Status, &spec, &s.Responses, &s.Respondents, &s.CreatedBy, &created, &updated, &closed); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(spec), &s.Definition); err != nil {
		return nil, fmt.Errorf("survey %d spec: %w", s.ID, err)
	}
	s.CreatedAt, s.UpdatedAt, s.ClosedAt = fromMS(created), fromMS(updated), fromMS(closed)
	return &s, nil
}

// surveyRefs answers a definition's questions about tags and attributes inside a transaction.
type surveyRefs struct {
	tags  map[int64]tagMeta
	attrs map[string]AttrDefRow
}

func (r surveyRefs) Tag(id int64) (survey.TagInfo, bool) {
	m, ok := r.tags[id]
	return survey.TagInfo{Name: m.name, GroupID: m.group, GroupName: m.groupName, Exclusive: m.exclusive}, ok
}

func (r surveyRefs) Attr(key string) (customer.AttrType, bool) {
	d, ok := r.attrs[key]
	return d.Type, ok
}

// checkSurvey normalises and validates a definition against the tags and attributes of the
// database, as seen by the transaction.
func (tx *Tx) checkSurvey(d *survey.Definition) error {
	d.Normalize()
	var ids []int64
	for _, q := range d.Questions {
		for _, o := range q.Options {
			ids = append(ids, o.TagIDs...)
		}
	}
	if len(ids) > survey.MaxQuestions*survey.MaxOptions*survey.MaxTagsPerOption {
		return &customer.FieldError{Field: "questions", Reason: "too many tags"}
	}
	tags, err := tx.tagMetas(uniqueIDs(ids))
	if err != nil {
		return err
	}
	attrs, err := tx.AttrDefs()
	if err != nil {
		return err
	}
	return d.Validate(surveyRefs{tags: tags, attrs: attrs})
}

func newSurveyToken() string {
	b := make([]byte, 10)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// CreateSurvey validates and stores a new survey (status draft unless s.Status says open),
// filling in s.ID, s.Token and the times.
func (s *Store) CreateSurvey(ctx context.Context, sv *survey.Survey) error {
	if sv.Status == "" {
		sv.Status = survey.Draft
	}
	if sv.Status != survey.Draft && sv.Status != survey.Open {
		return &customer.FieldError{Field: "status", Reason: "a new survey is draft or open"}
	}
	return s.InTx(ctx, func(tx *Tx) error {
		if err := tx.checkSurvey(&sv.Definition); err != nil {
			return err
		}
		spec, err := json.Marshal(sv.Definition)
		if err != nil {
			return err
		}
		now := tx.Now()
		sv.Token = newSurveyToken()
		sv.CreatedAt, sv.UpdatedAt = now, now
		return tx.row(`INSERT INTO surveys (token, title, status, spec, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			sv.Token, sv.Title, string(sv.Status), string(spec), nullID(sv.CreatedBy), ms(now), ms(now)).Scan(&sv.ID)
	})
}

// UpdateSurvey replaces a survey's definition and status. Question and option ids are what
// stored answers refer to: keep them to keep old answers readable.
func (s *Store) UpdateSurvey(ctx context.Context, sv *survey.Survey) error {
	if !sv.Status.Valid() {
		return &customer.FieldError{Field: "status", Reason: "want draft, open or closed"}
	}
	return s.InTx(ctx, func(tx *Tx) error {
		old, err := tx.survey(sv.ID)
		if err != nil {
			return err
		}
		if err := tx.checkSurvey(&sv.Definition); err != nil {
			return err
		}
		if old.Responses > 0 {
			// Stored answers are read by their question's type: a question that has answers
			// keeps it (ask the new question under a new id).
			for i, q := range sv.Questions {
				if was := old.Question(q.ID); was != nil && was.Type != q.Type {
					return &customer.FieldError{Field: fmt.Sprintf("questions[%d].type", i),
						Reason: fmt.Sprintf("question %q was %s and the survey has %d responses: keep its type, or add a new question with another id", q.ID, was.Type, old.Responses)}
				}
			}
		}
		spec, err := json.Marshal(sv.Definition)
		if err != nil {
			return err
		}
		now := tx.Now()
		closed := ms(old.ClosedAt)
		switch {
		case sv.Status == survey.Closed && old.Status != survey.Closed:
			closed = ms(now)
		case sv.Status != survey.Closed:
			closed = 0
		}
		if _, err := tx.exec(`UPDATE surveys SET title = ?, status = ?, spec = ?, updated_at = ?, closed_at = ? WHERE id = ?`,
			sv.Title, string(sv.Status), string(spec), ms(now), nullMSArg(closed), sv.ID); err != nil {
			return err
		}
		updated, err := tx.survey(sv.ID)
		if err != nil {
			return err
		}
		*sv = *updated
		return nil
	})
}

func nullMSArg(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// CloseSurvey stops a survey taking answers; closing a closed survey changes nothing.
func (s *Store) CloseSurvey(ctx context.Context, id int64) (*survey.Survey, error) {
	var out *survey.Survey
	err := s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.survey(id); err != nil {
			return err
		}
		now := ms(tx.Now())
		if _, err := tx.exec(`UPDATE surveys SET status = ?, closed_at = ?, updated_at = ? WHERE id = ? AND status <> ?`, string(survey.Closed), now, now, id, string(survey.Closed)); err != nil {
			return err
		}
		var err error
		out, err = tx.survey(id)
		return err
	})
	return out, err
}

// DeleteSurvey removes a survey from lists and closes its public page. Its responses stay (as
// do the attributes, tags and events they wrote) so that history keeps its causes.
func (s *Store) DeleteSurvey(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE surveys SET deleted_at = ?, status = ? WHERE id = ? AND deleted_at IS NULL`), ms(s.now()), string(survey.Closed), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func (tx *Tx) survey(id int64) (*survey.Survey, error) {
	sv, err := scanSurvey(tx.row(`SELECT `+surveyCols+` FROM surveys WHERE id = ? AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return sv, err
}

// Survey returns a survey that is not deleted.
func (s *Store) Survey(ctx context.Context, id int64) (*survey.Survey, error) {
	sv, err := scanSurvey(s.db.QueryRowContext(ctx, s.q(`SELECT `+surveyCols+` FROM surveys WHERE id = ? AND deleted_at IS NULL`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return sv, err
}

// SurveyByToken returns the survey of a public page.
func (s *Store) SurveyByToken(ctx context.Context, token string) (*survey.Survey, error) {
	if token == "" || len(token) > 64 {
		return nil, ErrNotFound
	}
	sv, err := scanSurvey(s.db.QueryRowContext(ctx, s.q(`SELECT `+surveyCols+` FROM surveys WHERE token = ? AND deleted_at IS NULL`), token))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return sv, err
}

// idPage cuts a newest-first list read with limit+1 rows to limit, and returns the cursor of
// the next page ("" on the last): the id of the last row kept.
func idPage[T any](list []T, limit int, id func(T) int64) ([]T, string) {
	if len(list) <= limit {
		return list, ""
	}
	return list[:limit], strconv.FormatInt(id(list[limit-1]), 10)
}

// SurveyFilter selects surveys for a list.
type SurveyFilter struct {
	Status survey.Status // "" for every status
	Q      string        // title contains
	Cursor string        // next_cursor of the previous page
	Limit  int
}

// SurveyPage is one page of surveys, newest first.
type SurveyPage struct {
	Surveys    []*survey.Survey `json:"surveys"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

func idCursor(cur string) (int64, error) {
	if cur == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(cur, 10, 64)
	if err != nil || id <= 0 {
		return 0, &customer.FieldError{Field: "cursor", Reason: "not a cursor from a previous page"}
	}
	return id, nil
}

// ListSurveys lists surveys newest first, keyset-paged.
func (s *Store) ListSurveys(ctx context.Context, f SurveyFilter) (*SurveyPage, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, &customer.FieldError{Field: "status", Reason: "want draft, open or closed"}
	}
	before, err := idCursor(f.Cursor)
	if err != nil {
		return nil, err
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	conds, args := []string{"deleted_at IS NULL"}, []any{}
	if f.Status != "" {
		conds, args = append(conds, "status = ?"), append(args, string(f.Status))
	}
	if q := strings.TrimSpace(f.Q); q != "" {
		conds, args = append(conds, "title LIKE ?"), append(args, "%"+likeStrip(q)+"%")
	}
	if before > 0 {
		conds, args = append(conds, "id < ?"), append(args, before)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+surveyCols+` FROM surveys WHERE `+strings.Join(conds, " AND ")+` ORDER BY id DESC LIMIT ?`), append(args, f.Limit+1)...)
	list, err := collect(rows, err, scanSurvey)
	if err != nil {
		return nil, err
	}
	page := &SurveyPage{}
	page.Surveys, page.NextCursor = idPage(list, f.Limit, func(sv *survey.Survey) int64 { return sv.ID })
	return page, nil
}

// likeStrip drops LIKE's wildcards from a search text, so "50%" finds "50%" and not all.
func likeStrip(s string) string {
	return strings.NewReplacer("%", "", "_", "").Replace(s)
}

// SurveyLinkSecret returns the secret that signs survey links, creating it on first use.
// Every siyu instance over one database reads the same secret.
func (s *Store) SurveyLinkSecret(ctx context.Context) ([]byte, error) {
	v, ok, err := s.Setting(ctx, surveyLinkSecretKey)
	if err != nil {
		return nil, err
	}
	if !ok {
		b := make([]byte, 32)
		rand.Read(b)
		if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`), surveyLinkSecretKey, hex.EncodeToString(b)); err != nil {
			return nil, fmt.Errorf("create survey link secret: %w", err)
		}
		if v, _, err = s.Setting(ctx, surveyLinkSecretKey); err != nil {
			return nil, err
		}
	}
	return hex.DecodeString(v)
}

// Submission is one respondent's answers to a survey.
type Submission struct {
	SurveyID int64
	// CustomerID comes from a verified signed link; 0 when the respondent gave a phone.
	CustomerID int64
	// Phone (11 digits) resolves or creates the customer with that phone identity.
	Phone   string
	Answers survey.Answers
	IP      string
	// AfterStore runs inside the transaction with the stored event (the tag rules' and SOPs'
	// ingestion hooks), as ingestion does.
	AfterStore func(tx *Tx, evts []*event.Event) error
}

// SubmitResult is what a stored submission did.
type SubmitResult struct {
	ResponseID int64
	CustomerID int64
	Created    bool    // a new customer was made from the phone
	TagIDs     []int64 // the tags added (already held ones included)
	Skipped    []string
	// Kept names the profile fields a phone respondent's answers left alone because the
	// customer already had a value (see keepKnown).
	Kept []string
}

// SubmitSurvey stores a response in one transaction (see the comment at the top of the file).
// It returns *SurveyNotAcceptingError when the survey is not open, ErrAlreadyAnswered on a
// second answer where repeats are not allowed, ErrNotFound when the survey or the link's
// customer does not exist. Answers must come from the survey's own Decode.
func (s *Store) SubmitSurvey(ctx context.Context, sub Submission) (*SubmitResult, error) {
	res := &SubmitResult{}
	err := s.InTx(ctx, func(tx *Tx) error {
		*res = SubmitResult{}
		sv, err := tx.survey(sub.SurveyID)
		if err != nil {
			return err
		}
		now := tx.Now()
		if ok, why := sv.Accepting(now); !ok {
			return &SurveyNotAcceptingError{Why: why}
		}
		via := "link"
		switch {
		case sub.CustomerID > 0:
			var id int64
			err := tx.row(`SELECT COALESCE(merged_into, id) FROM customers WHERE id = ?`, sub.CustomerID).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
			res.CustomerID = id
		case sub.Phone != "":
			via = "phone"
			r, err := tx.Resolve([]customer.Identity{{Kind: customer.PhoneID, Value: sub.Phone}}, "survey")
			if err != nil {
				return err
			}
			res.CustomerID, res.Created = r.CustomerID, r.Created
		default:
			return &customer.FieldError{Field: "phone", Reason: "a respondent is known by a signed link or a phone number"}
		}
		var n int64
		if err := tx.row(`INSERT INTO survey_respondents (survey_id, customer_id, responses, first_at, last_at) VALUES (?, ?, 1, ?, ?)
			ON CONFLICT (survey_id, customer_id) DO UPDATE SET responses = survey_respondents.responses + 1, last_at = excluded.last_at
			RETURNING responses`, sv.ID, res.CustomerID, ms(now), ms(now)).Scan(&n); err != nil {
			return fmt.Errorf("claim respondent: %w", err)
		}
		if n > 1 && !sv.AllowRepeat {
			return ErrAlreadyAnswered
		}
		attrs, err := tx.AttrDefs()
		if err != nil {
			return err
		}
		eff := sv.Effects(sub.Answers, func(k string) (customer.AttrType, bool) { d, ok := attrs[k]; return d.Type, ok })
		res.Skipped = eff.Skipped
		switch {
		case res.Created:
			src := "问卷"
			eff.Patch.Source = &src
			if eff.Patch.Phone == nil {
				eff.Patch.Phone = &sub.Phone
			}
		case via == "phone":
			// Nobody proved owning the phone: fill in what the profile lacks, never overwrite
			// what is known (a signed link, which proves who answers, does overwrite).
			if res.Kept, err = tx.keepKnown(res.CustomerID, &eff.Patch); err != nil {
				return err
			}
		}
		if err := tx.CheckPatch(&eff.Patch); err != nil {
			return fmt.Errorf("survey %d mapping: %w", sv.ID, err)
		}
		if err := tx.ApplyPatch(res.CustomerID, &eff.Patch); err != nil {
			return err
		}
		tags, err := tx.surveyTags(eff.TagIDs)
		if err != nil {
			return err
		}
		res.TagIDs = tags
		if _, err := tx.ChangeTags([]int64{res.CustomerID}, tags, nil, tag.Cause{Reason: tag.ReasonSurvey, Ref: "survey:" + strconv.FormatInt(sv.ID, 10)}); err != nil {
			return err
		}
		answers, err := json.Marshal(sub.Answers)
		if err != nil {
			return err
		}
		if err := tx.row(`INSERT INTO survey_responses (survey_id, customer_id, answers, via, ip, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			sv.ID, res.CustomerID, string(answers), via, sub.IP, ms(now)).Scan(&res.ResponseID); err != nil {
			return fmt.Errorf("store response: %w", err)
		}
		newRespondent := int64(0)
		if n == 1 {
			newRespondent = 1
		}
		if _, err := tx.exec(`UPDATE surveys SET responses = responses + 1, respondents = respondents + ? WHERE id = ?`, newRespondent, sv.ID); err != nil {
			return err
		}
		props := sv.EventProperties(sub.Answers)
		for k, v := range map[string]any{"survey_id": sv.ID, "survey_title": sv.Title, "response_id": res.ResponseID, "answers": eff.Values, "via": via} {
			props[k] = v
		}
		ev := &event.Event{
			MessageID:  fmt.Sprintf("survey:%d:response:%d", sv.ID, res.ResponseID),
			CustomerID: res.CustomerID,
			Type:       "track",
			Name:       survey.EventName,
			Properties: props,
			Context:    map[string]any{"ip": sub.IP},
			Timestamp:  now,
			ReceivedAt: now,
		}
		if _, err := tx.InsertEvents([]*event.Event{ev}); err != nil {
			return err
		}
		if err := tx.TouchLastSeen(res.CustomerID, now); err != nil {
			return err
		}
		tx.noteCustomer(res.CustomerID)
		if sub.AfterStore != nil {
			return sub.AfterStore(tx, []*event.Event{ev})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// keepKnown drops from a patch the fields the customer already has a value for, and returns
// their names: answers from a respondent who only typed a phone number fill blanks, they do not
// overwrite a profile someone else may own.
func (tx *Tx) keepKnown(id int64, p *customer.Patch) ([]string, error) {
	c, err := scanCustomer(tx.row(`SELECT `+customerCols+` FROM customers WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	var kept []string
	for _, f := range []struct {
		name string
		p    **string
		cur  string
	}{{"gender", &p.Gender, c.Gender}, {"birthday", &p.Birthday, c.Birthday}, {"region", &p.Region, c.Region}, {"phone", &p.Phone, c.Phone}} {
		if *f.p != nil && f.cur != "" && **f.p != f.cur {
			*f.p = nil
			kept = append(kept, f.name)
		}
	}
	for k := range p.Attrs {
		if v, ok := c.Attrs[k]; ok && v != nil {
			if fmt.Sprint(v) != fmt.Sprint(p.Attrs[k]) {
				kept = append(kept, "attrs."+k)
			}
			delete(p.Attrs, k)
		}
	}
	sort.Strings(kept)
	return kept, nil
}

// surveyTags keeps the tags that still exist, and at most one per single-choice group (the
// first), so that a tag deleted or a group made single-choice after the survey was saved
// never fails a respondent's submission.
func (tx *Tx) surveyTags(ids []int64) ([]int64, error) {
	metas, err := tx.tagMetas(uniqueIDs(ids))
	if err != nil {
		return nil, err
	}
	out := []int64{}
	groups := map[int64]bool{}
	for _, id := range ids {
		m, ok := metas[id]
		if !ok {
			continue
		}
		if m.exclusive {
			if groups[m.group] {
				continue
			}
			groups[m.group] = true
		}
		out = append(out, id)
	}
	return out, nil
}

// Response is one stored answer to a survey.
type Response struct {
	ID           int64          `json:"id"`
	SurveyID     int64          `json:"survey_id"`
	CustomerID   int64          `json:"customer_id"`
	CustomerName string         `json:"customer_name"`
	Answers      survey.Answers `json:"answers"`
	Via          string         `json:"via"` // "link" or "phone"
	CreatedAt    time.Time      `json:"created_at"`
}

// ResponseFilter selects a survey's responses.
type ResponseFilter struct {
	SurveyID int64
	// Scope keeps the responses of customers in a data scope (all: the zero value).
	Scope  staff.CustomerScope
	Cursor string
	Limit  int
}

// ResponsePage is one page of responses, newest first.
type ResponsePage struct {
	Responses  []*Response `json:"responses"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

func scanResponse(sc interface{ Scan(...any) error }) (*Response, error) {
	var (
		r       Response
		answers string
		at      int64
	)
	if err := sc.Scan(&r.ID, &r.SurveyID, &r.CustomerID, &r.CustomerName, &answers, &r.Via, &at); err != nil {
		return nil, err
	}
	r.Answers = survey.Answers{}
	if err := json.Unmarshal([]byte(answers), &r.Answers); err != nil {
		return nil, fmt.Errorf("response %d answers: %w", r.ID, err)
	}
	r.CreatedAt = fromMS(at)
	return &r, nil
}

// responseQuery selects responses with their customer's name (the survivor's, for a merged
// customer), restricted to the filter's data scope.
func responseQuery(f *ResponseFilter, before int64, desc bool) (string, []any) {
	q := `SELECT r.id, r.survey_id, r.customer_id, COALESCE(c.name, ''), r.answers, r.via, r.created_at
		FROM survey_responses r LEFT JOIN customers c ON c.id = r.customer_id WHERE r.survey_id = ?`
	args := []any{f.SurveyID}
	if !f.Scope.All() {
		cond, in := ownersIn("c.owner_id", f.Scope)
		q += cond
		args = append(args, in...)
	}
	if before > 0 {
		q += ` AND r.id < ?`
		args = append(args, before)
	}
	if desc {
		q += ` ORDER BY r.id DESC`
	} else {
		q += ` ORDER BY r.id`
	}
	return q, args
}

// SurveyResponses lists one page of a survey's responses, newest first.
func (s *Store) SurveyResponses(ctx context.Context, f ResponseFilter) (*ResponsePage, error) {
	before, err := idCursor(f.Cursor)
	if err != nil {
		return nil, err
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 50
	}
	q, args := responseQuery(&f, before, true)
	rows, err := s.db.QueryContext(ctx, s.q(q+` LIMIT ?`), append(args, f.Limit+1)...)
	list, err := collect(rows, err, scanResponse)
	if err != nil {
		return nil, err
	}
	page := &ResponsePage{}
	page.Responses, page.NextCursor = idPage(list, f.Limit, func(r *Response) int64 { return r.ID })
	return page, nil
}

// EachSurveyResponse calls fn for every response of a survey in the order they came (within
// the scope of f), reading row by row: results and exports of large surveys stream.
func (s *Store) EachSurveyResponse(ctx context.Context, f ResponseFilter, fn func(*Response) error) error {
	q, args := responseQuery(&f, 0, false)
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanResponse(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// mergeSurveys moves a merged customer's responses to the survivor. Where both answered one
// survey, the respondent rows add up and the survey counts one respondent fewer.
func mergeSurveys(tx *Tx, from, into int64) error {
	if _, err := tx.exec(`UPDATE surveys SET respondents = respondents - 1 WHERE id IN (
		SELECT a.survey_id FROM survey_respondents a JOIN survey_respondents b ON b.survey_id = a.survey_id AND b.customer_id = ? WHERE a.customer_id = ?)`, into, from); err != nil {
		return fmt.Errorf("survey respondents: %w", err)
	}
	if _, err := tx.exec(`INSERT INTO survey_respondents (survey_id, customer_id, responses, first_at, last_at)
		SELECT survey_id, ?, responses, first_at, last_at FROM survey_respondents WHERE customer_id = ?
		ON CONFLICT (survey_id, customer_id) DO UPDATE SET responses = survey_respondents.responses + excluded.responses,
			first_at = CASE WHEN excluded.first_at < survey_respondents.first_at THEN excluded.first_at ELSE survey_respondents.first_at END,
			last_at = CASE WHEN excluded.last_at > survey_respondents.last_at THEN excluded.last_at ELSE survey_respondents.last_at END`, into, from); err != nil {
		return fmt.Errorf("survey respondents: %w", err)
	}
	if _, err := tx.exec(`DELETE FROM survey_respondents WHERE customer_id = ?`, from); err != nil {
		return err
	}
	_, err := tx.exec(`UPDATE survey_responses SET customer_id = ? WHERE customer_id = ?`, into, from)
	return err
}

// SurveyAnswered reports whether a customer (or the customer it was merged into) has answered
// a survey, so the public page can say so before asking again.
func (s *Store) SurveyAnswered(ctx context.Context, surveyID, customerID int64) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM survey_respondents WHERE survey_id = ? AND customer_id =
		(SELECT COALESCE(merged_into, id) FROM customers WHERE id = ?)`), surveyID, customerID).Scan(&n)
	return n > 0, err
}
