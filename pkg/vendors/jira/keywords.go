package jira

import "github.com/itsmhub/itsm/pkg/itsm"

// The keyword tables carry the model's definitions of each value (the
// "meaning" column of its enum tables) in English, German, French, Spanish,
// Portuguese, Russian, Japanese and Chinese, in the forms Jira's own
// templates and localizations use. Keywords are written normalized (see
// normalizeName: lower case, no diacritics, punctuation as spaces); a
// trailing '*' makes a stem that matches at a word start, CJK keywords
// match anywhere, the rest match whole words or phrases.
//
// Rules are tried by precedence, not by position in the name: the first
// rule with a keyword anywhere in the name wins. So the specific states
// come first: "Closed - Won't Fix" is CANCELLED, "Ready for Review"
// IN_REVIEW, "Готово к разработке" (ready for development) TODO, and
// "Not started" or "未完成" is not IN_PROGRESS or CLOSED. MAPPING.md
// explains the order; the corpus in testdata/mapping_corpus holds the
// names these tables are judged by (TestMappingCorpus).

type statusRule struct {
	status itsm.Status
	words  []string
}

var statusRules = [...]statusRule{
	// Negations and phrases whose generic words would mislead later rules.
	{itsm.StatusTodo, []string{
		"not started", "not yet started", "unstarted", "awaiting implementation",
		"pending implementation", "waiting for implementation", "scheduled for implementation",
		"nicht begonnen", "nicht gestartet", "noch nicht begonnen",
		"non commence*", "pas commence*", "pas encore commence*",
		"no iniciad*", "sin iniciar", "sin empezar", "nao iniciad*", "itens pendentes",
		"не начат*", "не начинал*", "готово к разработке", "готов к разработке",
		"not done", "未着手", "未开始", "未開始", "尚未开始", "未完成", "未完了",
	}},
	// "Waiting for support" is a request back in the support team's court:
	// open, not waiting on anybody else.
	{itsm.StatusOpen, []string{
		"waiting for support", "waiting on support", "awaiting support", "waiting for agent",
		"needs triage", "awaiting triage", "waiting for triage", "untriaged", "triage",
		"wartet auf support", "en attente de support", "esperando soporte",
		"esperando por soporte", "aguardando suporte", "ожидает поддержки",
		"サポート待ち", "等待支持", "等待技术支持",
	}},
	// Rework after a failed review or test: the work goes on, nothing is
	// cancelled.
	{itsm.StatusInProgress, []string{
		"review rejected", "rejected by review", "qa rejected", "rejected by qa", "qa failed",
		"failed qa", "test failed", "tests failed", "failed testing", "changes requested",
		"rework", "needs rework", "in rework", "nacharbeit", "retrabalho", "доработк*",
	}},
	// CANCELLED: cancelled, rejected, or won't be done.
	{itsm.StatusCancelled, []string{
		"cancel*", "reject*", "declin*", "abandon*", "won't", "wont", "will not",
		"not doing", "not do", "withdraw*", "discard*", "obsolete", "invalid", "duplicate*",
		"not a bug", "cannot reproduce", "can't reproduce", "out of scope", "dropped", "void",
		"denied", "refused", "annulled", "wontfix",
		"abgebrochen", "abgelehnt", "storniert", "verworfen", "nicht zu erledigen",
		"wird nicht*", "zuruckgezogen", "abgesagt", "annulliert",
		"annul*", "rejet*", "refus*", "ne sera pas*", "sans suite",
		"rechazad*", "descartad*", "anulad*", "no se hara", "no se realizara", "desestimad*",
		"rejeitad*", "recusad*", "nao sera feit*", "nao fazer", "indeferid*",
		"отмен*", "отклон*", "отказ*", "не будет*", "аннулир*",
		"キャンセル", "却下", "取り消", "取消", "中止", "対応しない", "棄却", "破棄",
		"拒绝", "拒絕", "驳回", "駁回", "不予处理", "不修复", "不做", "放弃", "作废", "作廢", "废弃",
	}},
	// IN_REVIEW: under code review, peer review, or QA.
	{itsm.StatusInReview, []string{
		"review*", "qa", "in qa", "quality assurance", "quality check", "pull request",
		"codereview*", "prufung", "in prufung", "uberprufung", "qualitatssicherung", "qs",
		"revue*", "relecture", "controle qualite",
		"revision*", "revisando", "control de calidad", "revisao", "controle de qualidade",
		"ревью", "на проверке", "проверка", "рецензир*", "код ревью", "контроль качества",
		"レビュー", "査読", "品質保証",
		"审核", "審核", "评审", "評審", "审查", "審查", "复核", "複核", "质检", "質檢", "质量保证",
	}},
	// A status that says it is closed is not awaiting closure: "Closed -
	// Fixed" is CLOSED. Only the closed words themselves: "Ready to close"
	// is RESOLVED, "Готово к тестированию" PENDING.
	{itsm.StatusClosed, []string{
		"closed", "geschlossen", "ferme", "fermee", "clos", "cloture*", "cerrado", "cerrada",
		"fechado", "fechada", "закрыт", "закрыта", "закрыто", "已关闭", "已關閉", "クローズ済",
	}},
	// RESOLVED: resolved or fixed, awaiting closure.
	{itsm.StatusResolved, []string{
		"resolved", "fixed", "verified", "solved", "merged", "mitigated",
		"ready for release", "ready to release", "ready for deploy*", "ready to deploy",
		"ready for prod*", "ready to close", "ready for closure", "awaiting release",
		"awaiting deploy*", "pending release", "pending deploy*", "pending closure",
		"awaiting closure", "waiting for deploy*", "waiting for release", "scheduled for release",
		"development finished", "dev finished", "dev done", "dev complete", "development done",
		"development complete", "code complete",
		"gelost", "behoben", "resolu*", "corrige*",
		"resuelt*", "solucionad*", "corregid*", "arreglad*", "listo para despliegue",
		"listo para produccion", "resolvid*", "corrigid*", "pronto para deploy",
		"pronto para producao",
		"решен*", "исправлен*", "проверен*", "готово к релизу", "готов к релизу",
		"解決済", "修正済", "処理済", "対応済", "已解决", "已解決", "已修复", "已修復",
	}},
	// BLOCKED: blocked, waiting, or on hold (stopped by something).
	{itsm.StatusBlocked, []string{
		"block*", "on hold", "hold", "impeded", "impediment*", "stalled", "stuck",
		"suspend*", "paused", "pause", "parked", "frozen", "deferred", "postponed",
		"blockiert", "angehalten", "pausiert", "zuruckgestellt", "behindert", "ausgesetzt",
		"bloque*", "suspendu*", "en pause", "gele", "reporte", "reportee",
		"bloquead*", "en espera", "detenid*", "pausad*", "suspendid*", "impedid*", "aplazad*",
		"em espera", "suspens*", "adiad*",
		"заблокир*", "блокир*", "приостановлен*", "отложен*", "на паузе",
		"ブロック", "保留", "停止", "中断",
		"阻塞", "受阻", "挂起", "掛起", "暂停", "暫停", "搁置", "擱置", "冻结", "凍結",
	}},
	// PENDING: pending validation, testing, or external action.
	{itsm.StatusPending, []string{
		"pending", "waiting", "wait", "awaiting", "await", "test*", "uat",
		"user acceptance", "acceptance", "validat*", "verif*", "approval", "feedback",
		"needs info*", "more info*", "info needed", "information needed",
		"clarification", "on customer", "third party", "external", "with customer", "with vendor",
		"action required", "monitoring",
		"wartet*", "warten*", "ausstehend", "abnahme", "validierung", "verifizierung", "freigabe",
		"attente*", "recette", "validation", "a valider", "verification", "approbation",
		"pendiente*", "esperando", "prueba*", "validacion", "verificacion", "aprobacion",
		"aguardando", "pendente*", "homologacao", "validacao", "verificacao", "aprovacao",
		"ожида*", "тестир*", "в тесте", "согласован*", "валидац*", "верификац*", "уточнен*",
		"待ち", "テスト", "検証", "確認待", "承認待",
		"等待", "待审批", "待審批", "审批", "審批", "测试", "測試", "验证", "驗證",
		"待确认", "待確認", "待定",
	}},
	// OPEN: newly opened or reported.
	{itsm.StatusOpen, []string{
		"open", "opened", "reopen*", "re open*", "new", "reported", "submitted", "created",
		"offen", "neu", "geoffnet", "wieder geoffnet", "erneut geoffnet", "wiedereroffnet",
		"ouvert*", "rouvert*", "reouvert*", "nouveau", "nouvelle",
		"abiert*", "reabiert*", "nuevo", "nueva", "abert*", "reabert*", "novo", "nova",
		"открыт*", "переоткрыт*", "новый", "новая", "новое", "новые",
		"オープン", "新規", "未対応",
		"打开", "打開", "开放", "開放", "新建", "重新打开", "重新打開",
	}},
	// TODO: in backlog or planned for work.
	{itsm.StatusTodo, []string{
		"to do", "todo", "backlog", "selected for development", "selected", "ready",
		"ready for dev*", "ready for work", "ready to start", "approved for dev*", "plan*", "scheduled",
		"grooming", "refinement", "in refinement", "estimation", "queue", "up next", "next up",
		"prioritized", "prioritised", "groomed", "refined", "icebox", "queued", "in queue",
		"zu erledigen", "zu tun", "geplant", "planung", "ausgewahlt*", "bereit",
		"a faire", "planifi*", "selectionne*", "pret", "prete",
		"por hacer", "planificad*", "planead*", "seleccionad*", "listo para", "lista para",
		"a fazer", "planejad*", "selecionad*", "pronto para",
		"к выполнению", "сделать", "бэклог", "беклог", "запланирован*", "планирован*",
		"выбрано для разработки", "выбран*",
		"作業前", "バックログ", "予定", "計画", "選択済",
		"待办", "待辦", "待处理", "待處理", "计划", "計劃", "待开发", "待開發", "已选择", "已選擇",
	}},
	// IN_PROGRESS: work is actively in progress.
	{itsm.StatusInProgress, []string{
		"in progress", "progress*", "in work", "work in progress", "wip", "doing", "working",
		"started", "in development", "development", "in dev", "developing", "implement*",
		"investigat*", "analys*", "analyz*", "in design", "escalat*", "active", "ongoing",
		"underway", "fixing", "in fix", "processing", "deploying", "in process", "identified",
		"building", "in build",
		"in arbeit", "in bearbeitung", "bearbeitung", "wird bearbeitet", "in entwicklung",
		"entwicklung", "umsetzung", "in umsetzung", "analyse", "untersuchung", "eskaliert",
		"begonnen", "gestartet", "aktiv",
		"en cours", "en developpement", "developpement", "en traitement", "traitement",
		"mise en oeuvre", "escalade*", "commence*",
		"en curso", "en progreso", "en proceso", "en desarrollo", "desarrollo", "trabajando",
		"implementando", "investigando", "en investigacion", "analisis", "escalad*",
		"iniciad*", "atendiendo", "en atencion",
		"em andamento", "em progresso", "em desenvolvimento", "desenvolvimento", "em execucao",
		"execucao", "fazendo", "trabalhando", "em implementacao", "em analise", "analise",
		"em investigacao", "em atendimento", "atendimento",
		"в работе", "в процессе", "выполняется", "в разработке", "разработк*", "реализац*",
		"анализ*", "исследован*", "расследован*", "эскалир*", "начат*", "делается",
		"進行中", "作業中", "対応中", "処理中", "実装中", "開発中", "調査中", "エスカレ", "着手",
		"进行中", "处理中", "處理中", "开发中", "實施中", "实施中", "调查中", "調查中", "已升级",
		"已升級", "工作中", "执行中", "執行中",
	}},
	// CLOSED: completed and closed.
	{itsm.StatusClosed, []string{
		"done", "close*", "complete*", "finish*", "delivered", "released", "deployed",
		"shipped", "published", "archived",
		"fertig*", "erledigt", "abgeschlossen", "ausgeliefert", "erfullt",
		"beendet", "umgesetzt", "veroffentlicht",
		"termin*", "ferme*", "clotur*", "fait", "acheve*", "livre*", "deploye*",
		"realise*",
		"hecho", "listo", "cerrad*", "finalizad*", "completad*", "entregad*",
		"desplegad*", "realizad*", "concluid*",
		"feito", "fechad*", "encerrad*", "entregue", "pronto", "implantad*",
		"готов*", "закрыт*", "выполнен*", "завершен*", "сделано", "закончен*",
		"реализован*", "доставлен*",
		"完了", "クローズ", "終了", "リリース済",
		"完成", "关闭", "關閉", "结束", "結束", "完毕", "完畢", "已发布", "已發布", "已上线", "已交付",
	}},
}

// priorityRules: the definitions of the five levels. Word stems are few
// here: "high" must not find "highest", nor "low" "lowest".
type priorityRule struct {
	priority itsm.Priority
	words    []string
}

var priorityRules = [...]priorityRule{
	// Negated urgency, before CRITICAL's "urgent" and "critical" see it.
	{itsm.PriorityLow, []string{
		"not urgent", "non urgent", "nonurgent", "not critical", "non critical",
		"not important", "unimportant", "nicht dringend", "nicht kritisch", "nicht wichtig",
		"pas urgent*", "pas important*", "no urgente", "no importante", "nao urgente",
		"nao importante", "неважн*", "не важн*",
		"не срочн*", "несрочн*", "некритич*", "не критич*",
		"非紧急", "非緊急", "不紧急", "不緊急",
	}},
	// CRITICAL: highest priority, blockers, or emergencies.
	{itsm.PriorityCritical, []string{
		"highest", "blocker", "blocking", "critical", "crit", "urgent", "emergency",
		"showstopper", "show stopper", "p0", "p1", "sev0", "sev1", "sev 0", "sev 1",
		"severity 0", "severity 1", "s0", "s1", "prio 0", "prio 1", "priority 0", "priority 1",
		"very high", "extremely high", "top", "immediate", "asap", "catastrophic", "fatal",
		"extreme", "must have",
		"hochste", "sehr hoch", "kritisch", "dringend", "notfall", "blockierend", "akut", "sofort",
		"la plus haute", "plus haute", "tres haute", "la plus elevee", "plus elevee",
		"tres elevee", "critique", "bloquant*", "urgen*", "maximale",
		"mas alta", "muy alta", "altisima", "critic*", "bloqueante", "bloqueador*",
		"emergencia", "maxima",
		"mais alta", "muito alta", "altissima",
		"наивысш*", "высочайш*", "самый высокий", "очень высокий", "критич*", "блокир*",
		"блокер", "срочн*", "аварийн*", "неотложн*",
		"最高", "緊急", "至急", "最優先", "ブロッカー", "クリティカル", "致命",
		"紧急", "严重", "嚴重", "阻塞", "阻碍", "阻礙", "关键", "關鍵", "最优先", "特急",
	}},
	// INFORMATIONAL: lowest priority or informational.
	{itsm.PriorityInformational, []string{
		"lowest", "trivial", "informational", "info", "information", "p5", "sev5", "sev 5",
		"s5", "severity 5", "prio 5", "priority 5", "planning", "very low", "cosmetic",
		"wishlist", "nice to have", "someday", "fyi", "negligible", "won't have", "wont have",
		"niedrigste", "sehr niedrig", "unwesentlich", "informativ",
		"la plus basse", "plus basse", "tres basse", "triviale",
		"mas baja", "muy baja", "informativa", "informativo", "bajisima",
		"mais baixa", "muito baixa", "baixissima",
		"самый низкий", "очень низкий", "наинизш*", "тривиальн*", "незначительн*",
		"информац*",
		"最低", "些細", "トリビアル", "情報",
		"轻微", "輕微", "不重要", "提示", "信息",
	}},
	// HIGH: high priority or major issues.
	{itsm.PriorityHigh, []string{
		"high", "higher", "major", "important", "p2", "sev2", "sev 2", "s2", "severity 2",
		"prio 2", "priority 2", "elevated", "serious", "severe", "should have",
		"hoch", "hohe", "wichtig", "schwerwiegend",
		"haute", "haut", "elevee", "eleve", "majeur*", "importante",
		"alta", "alto", "mayor", "grave",
		"maior",
		"высок*", "важн*", "серьезн*",
		"高", "重要", "メジャー",
		"主要", "较高", "較高",
	}},
	// LOW: low priority or minor issues.
	{itsm.PriorityLow, []string{
		"low", "lower", "minor", "minimal", "could have", "p4", "sev4", "sev 4", "s4", "severity 4", "prio 4", "priority 4",
		"niedrig", "gering", "geringfugig",
		"basse", "bas", "faible", "mineur*",
		"baja", "bajo", "menor",
		"baixa", "baixo",
		"низк*", "минорн*", "второстепенн*",
		"低", "軽微", "マイナー",
		"次要", "较低", "較低",
	}},
	// MEDIUM: medium or normal priority.
	{itsm.PriorityMedium, []string{
		"medium", "normal", "moderate", "average", "standard", "mid", "middle",
		"p3", "sev3", "sev 3", "s3", "severity 3", "prio 3", "priority 3",
		"mittel", "mittlere", "mittleres",
		"moyenne", "moyen", "normale",
		"media", "medio", "moderad*",
		"средн*", "обычн*", "нормальн*", "умеренн*",
		"中", "普通", "通常",
		"中等", "一般", "正常",
	}},
}

var (
	statusMatcher   = newKeywordMatcher(ruleWords(statusRules[:], func(r statusRule) []string { return r.words }))
	priorityMatcher = newKeywordMatcher(ruleWords(priorityRules[:], func(r priorityRule) []string { return r.words }))
)

func ruleWords[R any](rules []R, words func(R) []string) [][]string {
	out := make([][]string, len(rules))
	for i, r := range rules {
		out[i] = words(r)
	}
	return out
}
