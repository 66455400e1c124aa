package web

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/xuri/excelize/v2"
)

// writeXLSX answers a table as an Excel workbook of one sheet: the first row is the header,
// cells that read as numbers are written as numbers (so Excel sums them), everything else as
// text — never as a formula, whatever it starts with.
func writeXLSX(w http.ResponseWriter, name string, rows [][]string) error {
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "Sheet1"
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return err
	}
	for i, row := range rows {
		cells := make([]any, len(row))
		for j, v := range row {
			cells[j] = v
			if i > 0 {
				if x, err := strconv.ParseFloat(v, 64); err == nil && v != "" {
					cells[j] = x
				}
			}
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, cells); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+".xlsx"))
	h.Set("Cache-Control", "no-store")
	return f.Write(w)
}
