package web

import "net/http"

func (s *Server) routesIngest(mux *http.ServeMux) {}
