package web

import "net/http"

func (s *Server) routesConsole(mux *http.ServeMux) {}
